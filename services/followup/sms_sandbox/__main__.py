import uvicorn

from services.followup.sms_sandbox.app import SandboxSettings, create_app
from shared.logging import setup_logging

settings = SandboxSettings()
setup_logging("sms_sandbox", settings.log_level)
uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)
