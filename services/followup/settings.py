from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from shared.settings import ServiceSettings


class FollowupSettings(ServiceSettings):
    http_port: int = 8004
    # The hot reads take arrays of account ids (`= ANY($1)`) against tables that grow all day: a
    # cached generic plan made early kept scanning whole tables (a batch's read grew from 60 µs to
    # 6 ms per account over 30,000 promises). Planning each execution costs ~0.1-0.5 ms per batch.
    db_plan_cache_mode: Literal["auto", "force_custom_plan", "force_generic_plan"] = "force_custom_plan"
    public_base_url: str | None = Field(
        default=None,
        description="How the SMS gateway reaches this service's webhooks; default http://HTTP_HOST:HTTP_PORT",
    )
    sms_provider_url: str = "http://127.0.0.1:8090"
    sms_provider_api_key: SecretStr
    sms_provider_timeout_s: float = 10.0
    sms_provider_attempts: int = Field(default=4, ge=1, le=10)
    sms_provider_template_ids: dict[str, str] = Field(
        default_factory=dict, description="our template id -> the gateway's registered template id (JSON)"
    )
    sms_webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC key of the gateway's webhooks; default: the provider API key"
    )
    sms_sender_id: str = "FIELDCOLLECT"
    sms_job_poll_s: float = 2.0
    sms_send_batch: int = Field(default=20, ge=1, le=500)
    sms_sender_enabled: bool = Field(default=True, description="run the SMS sender in this process")
    event_consumers_enabled: bool = Field(default=True, description="consume events in this process")
    outcome_consumers: int = Field(
        default=1, ge=1, le=16, description="members of the outcomes consumer group in this process"
    )
    outcome_fetch_max_wait_ms: int | None = Field(
        default=None,
        ge=1,
        le=60_000,
        description="fetch.max.wait.ms of the outcomes group (latency-sensitive); default CONSUMER_FETCH_MAX_WAIT_MS",
    )
    promise_check_interval_s: float = 30.0
    call_lease_s: float = Field(default=900.0, ge=30, le=7200)
    rules_path: Path = Path(__file__).parent / "rules.toml"
    compliance_config: Path | None = Field(
        default=None, description="a lender's compliance configuration (shared.compliance PackCatalog TOML)"
    )
    default_time_zone: str = Field(
        default="Asia/Shanghai",
        description="proposes a contact's time while an account's own zone is still unknown; "
        "the compliance check always uses the customer's zone",
    )
    followup_fault_step: str | None = Field(
        default=None,
        description="tests only: SIGKILL this process at this SMS step (services/followup/faults.py)",
    )

    def webhook_secret(self) -> str:
        secret = self.sms_webhook_secret or self.sms_provider_api_key
        return secret.get_secret_value()

    def webhook_base(self) -> str:
        return (self.public_base_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")
