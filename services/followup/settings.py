from pydantic import SecretStr

from shared.settings import ServiceSettings


class FollowupSettings(ServiceSettings):
    http_port: int = 8004
    sms_provider_url: str = "http://127.0.0.1:8090"
    sms_provider_api_key: SecretStr
    sms_provider_timeout_s: float = 10.0
    sms_sender_id: str = "FIELDCOLLECT"
    sms_job_poll_s: float = 2.0
