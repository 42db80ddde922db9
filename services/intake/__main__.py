"""`python -m services.intake [serve|migrate|import-file PATH [--encoding gb18030] [--publish]]`."""

from __future__ import annotations

import sys

from services.intake.cli import import_file_command
from services.intake.main import SCHEMA, SERVICE_DIR, create_app
from services.intake.settings import IntakeSettings
from shared.service_main import run_service

if len(sys.argv) > 1 and sys.argv[1] == "import-file":
    raise SystemExit(import_file_command(sys.argv[2:]))
run_service(create_app, IntakeSettings, SCHEMA, SERVICE_DIR)
