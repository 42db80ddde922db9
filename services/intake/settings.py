import tempfile
from pathlib import Path

from pydantic import Field

from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    http_port: int = 8001
    max_batch_rows: int = 50_000
    max_batch_bytes: int = 64 * 1024 * 1024
    # A nightly file stages a million events at once: bigger relay batches amortise the
    # outbox round trips (the relay's semantics do not depend on the size).
    outbox_batch_size: int = 5000
    import_chunk_rows: int = Field(
        default=20_000,
        ge=1,
        description="Rows committed per transaction; also how much a killed import re-reads.",
    )
    import_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "fieldcollect-intake-imports",
        description="Where uploaded files wait until imported (shared storage with several replicas).",
    )
    max_import_bytes: int = 8 * 1024 * 1024 * 1024
    cdc_topic: str | None = Field(
        default=None,
        description="Consume account changes from this topic (e.g. corebanking.accounts.v1); unset: off.",
    )
