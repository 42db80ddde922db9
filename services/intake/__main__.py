from services.intake.main import SCHEMA, SERVICE_DIR, create_app
from services.intake.settings import IntakeSettings
from shared.service_main import run_service

run_service(create_app, IntakeSettings, SCHEMA, SERVICE_DIR)
