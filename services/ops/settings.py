from pydantic import Field

from shared.settings import ServiceSettings

DEV_SCRAPE_TARGETS = {
    "intake": "http://127.0.0.1:8001",
    "planner": "http://127.0.0.1:8002",
    "visits": "http://127.0.0.1:8003",
    "followup": "http://127.0.0.1:8004",
}


class OpsSettings(ServiceSettings):
    """The console owns no schema: DATABASE_URL is ignored, Kafka and the services' /metrics
    are its only sources."""

    http_port: int = 8005
    ops_scrape_targets: dict[str, str] = Field(
        default_factory=lambda: dict(DEV_SCRAPE_TARGETS),
        description='Service name → base URL whose /metrics is read (JSON: {"intake": "http://…"}).',
    )
    ops_time_zone: str = Field(default="Asia/Shanghai", description="Where 'today' is, for the funnel.")
    ops_projection_days: int = Field(
        default=2, ge=1, le=14, description="Days of events the console's projection reads at start-up."
    )
    ops_recent_events: int = Field(
        default=500, ge=10, le=10_000, description="Live events kept for new viewers."
    )
    ops_cache_s: float = Field(default=2.0, description="How long lag and scrape results are reused.")
    ops_allow_query_token: bool = Field(
        default=True,
        description="Accept ?access_token= on the event stream, from loopback clients only.",
    )
