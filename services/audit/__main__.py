from services.audit.main import SCHEMA, SERVICE_DIR, create_app
from services.audit.settings import AuditSettings
from shared.service_main import run_service

run_service(create_app, AuditSettings, SCHEMA, SERVICE_DIR)
