from pathlib import Path

from pydantic import Field

from shared.settings import ServiceSettings


class VisitsSettings(ServiceSettings):
    http_port: int = 8003
    compliance_config: Path | None = Field(
        default=None, description="a lender's compliance configuration (shared.compliance PackCatalog TOML)"
    )
    geofence_m: float = Field(
        default=200.0, gt=0, description="how far from the visit's address a check-in may be"
    )
    accuracy_allowance_m: float = Field(
        default=100.0,
        ge=0,
        description="a fix's reported accuracy widens the geofence by at most this much; "
        "a fix less accurate than this is flagged",
    )
    max_travel_kmh: float = Field(
        default=150.0,
        gt=0,
        description="speed between an agent's consecutive check-ins above which it is flagged",
    )
    max_clock_skew_s: float = Field(
        default=300.0, gt=0, description="device clock error above which a check-in is flagged"
    )
    rate_limit_per_s: float = Field(
        default=5.0, gt=0, description="sustained requests per second per agent (per replica)"
    )
    rate_limit_burst: int = Field(default=30, ge=1, description="requests an agent may send at once")
    max_body_bytes: int = Field(default=16 * 1024, ge=1024, description="larger request bodies get 413")
    route_time_zone: str = Field(
        default="Asia/Shanghai", description="the zone in which 'today' and 'tomorrow' are read by default"
    )
    max_promise_days: int = Field(default=90, ge=1, description="how far ahead a promise to pay may be dated")
    max_queue_age_days: int = Field(
        default=30, ge=1, description="the oldest check-in or outcome an offline queue may still deliver"
    )
    idempotency_retention_days: int = Field(
        default=30,
        ge=1,
        description="how long an Idempotency-Key is remembered (an offline queue's lifetime)",
    )
    token_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="verified tokens remembered until they expire (0: verify every time)",
    )
    cash_code_ttl_s: int = Field(
        default=600, ge=60, description="how long the customer's one-time cash confirmation code is valid"
    )
    cash_code_attempts: int = Field(
        default=5, ge=1, description="codes an agent may try for one cash confirmation"
    )
