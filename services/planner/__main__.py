from services.planner.main import SCHEMA, SERVICE_DIR, create_app
from services.planner.settings import PlannerSettings
from shared.service_main import run_service

run_service(create_app, PlannerSettings, SCHEMA, SERVICE_DIR)
