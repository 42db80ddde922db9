from services.followup.main import SCHEMA, SERVICE_DIR, create_app
from services.followup.settings import FollowupSettings
from shared.service_main import run_service

run_service(create_app, FollowupSettings, SCHEMA, SERVICE_DIR)
