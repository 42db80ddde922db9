"""Visits: the field agents' app API; publishes collections.visit-outcomes.v1."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.visits.api import router
from services.visits.consumers import CONSUMERS
from services.visits.settings import VisitsSettings
from shared.runtime import create_service_app

SCHEMA = "visits"
SERVICE_DIR = Path(__file__).parent


def create_app(settings: VisitsSettings | None = None) -> FastAPI:
    return create_service_app(
        title="Fieldcollect visits",
        description="The field agents' app API: route, check-ins and outcomes.",
        settings=settings or VisitsSettings(),
        schema=SCHEMA,
        service_dir=SERVICE_DIR,
        routers=[router],
        consumers=CONSUMERS,
    )
