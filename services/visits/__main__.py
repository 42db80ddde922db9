"""`python -m services.visits [serve|migrate|token --agent AG-001 [--team T]]`."""

import sys

from services.visits.main import SCHEMA, SERVICE_DIR, create_app
from services.visits.settings import VisitsSettings
from services.visits.tokens import token_command
from shared.service_main import run_service

if len(sys.argv) > 1 and sys.argv[1] == "token":
    raise SystemExit(token_command(sys.argv[2:]))
run_service(create_app, VisitsSettings, SCHEMA, SERVICE_DIR)
