from services.visits.main import SCHEMA, SERVICE_DIR, create_app
from services.visits.settings import VisitsSettings
from shared.service_main import run_service

run_service(create_app, VisitsSettings, SCHEMA, SERVICE_DIR)
