"""`python -m services.ops` serves the console; `python -m services.ops tail|lag|dlq …` is the CLI."""

import sys

from services.ops.cli import COMMANDS, main, serve

if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
    raise SystemExit(main(sys.argv[1:]))
serve(sys.argv[1:])
