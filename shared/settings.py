"""Settings read from the environment: one base every service extends."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every Fieldcollect process needs; services subclass it for their own extras."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/fieldcollect",
        description="PostgreSQL DSN; each service keeps its tables in its own schema.",
    )
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_plan_cache_mode: Literal["auto", "force_custom_plan", "force_generic_plan"] = Field(
        default="auto",
        description="PostgreSQL plan_cache_mode of the service's connections (see FollowupSettings).",
    )
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_enable_idempotence: bool = Field(
        default=True,
        description="Idempotent producer. On in production; off for brokers without it.",
    )
    kafka_client_id: str = "fieldcollect"
    consumer_batch_size: int = 500
    consumer_poll_timeout_ms: int = 200
    consumer_fetch_max_wait_ms: int = Field(
        default=500,
        description="How long the broker may hold a fetch with no new data (aiokafka's default). "
        "Kafka answers as soon as data arrives; a broker that waits the full time adds it to latency.",
    )
    outbox_batch_size: int = 1000
    outbox_safety_poll_s: float = Field(
        default=5.0,
        description="Relay wakes on NOTIFY; this timer only covers a lost notification.",
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_spans: bool = Field(default=True, description="One log line per ended span (LOG_SPANS).")
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector base URL (spans go to <url>/v1/traces); unset: no export.",
    )
    traces_file: Path | None = Field(
        default=None, description="Append every span as a JSON line to this file (development, tests)."
    )
    run_consumers: bool = Field(
        default=True, description="Start Kafka consumers and the outbox relay with the API."
    )
    jwt_public_key: str | None = Field(default=None, description="PEM of the token issuer")
    jwt_public_key_file: Path | None = None
    jwt_audience: str = "fieldcollect"
    jwt_issuer: str = "fieldcollect-dev"

    def token_public_key(self) -> str:
        if self.jwt_public_key:
            return self.jwt_public_key
        if self.jwt_public_key_file:
            return self.jwt_public_key_file.read_text()
        raise RuntimeError("set JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE: the API verifies tokens")
