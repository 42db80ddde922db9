"""What intake consumes: the optional CDC topic of core systems that stream account changes."""

from __future__ import annotations

import asyncpg

from services.intake import handlers
from services.intake.segmentation import Segmentation
from services.intake.settings import IntakeSettings
from shared.events import Envelope
from shared.runtime import ConsumerSpec

CDC_GROUP = "intake.cdc"


def consumers(settings: IntakeSettings, seg: Segmentation) -> list[ConsumerSpec]:
    """The CDC consumer when a topic is configured (CDC_TOPIC), else none."""
    if not settings.cdc_topic:
        return []

    async def on_snapshot_changed(conn: asyncpg.Connection, event: Envelope) -> None:
        await handlers.apply_change(conn, event, seg)

    return [
        ConsumerSpec(
            group_id=CDC_GROUP,
            topics=[settings.cdc_topic],
            handlers={"account.snapshot_changed": on_snapshot_changed},
            whole_batches=True,
        )
    ]
