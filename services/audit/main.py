"""Audit: every contact attempt from the event streams, append-only and hash-chained."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.audit.api import router
from services.audit.handlers import on_contact_event
from services.audit.settings import AuditSettings
from services.audit.trail import AUDITED_TYPES
from shared.events import topics
from shared.runtime import ConsumerSpec, create_service_app

SCHEMA = "audit"
SERVICE_DIR = Path(__file__).parent
CONSUMERS = [
    ConsumerSpec(
        group_id="audit.contacts",
        topics=[topics.ASSIGNMENTS, topics.VISIT_OUTCOMES, topics.FOLLOWUPS],
        handlers=dict.fromkeys(AUDITED_TYPES, on_contact_event),
    )
]


def create_app(settings: AuditSettings | None = None) -> FastAPI:
    return create_service_app(
        title="Fieldcollect audit trail",
        description="Contact attempts — planned, performed, refused, failed — append-only and verifiable.",
        settings=settings or AuditSettings(),
        schema=SCHEMA,
        service_dir=SERVICE_DIR,
        routers=[router],
        consumers=CONSUMERS,
    )
