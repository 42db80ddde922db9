"""Intake: core banking's snapshots in, delinquency events out."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.intake.api import router
from services.intake.segmentation import load_segmentation
from services.intake.settings import IntakeSettings
from shared.runtime import create_service_app

SCHEMA = "intake"
SERVICE_DIR = Path(__file__).parent


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    app = create_service_app(
        title="Fieldcollect intake",
        description="Account snapshots from core banking; publishes collections.delinquency.v1.",
        settings=settings or IntakeSettings(),
        schema=SCHEMA,
        service_dir=SERVICE_DIR,
        routers=[router],
    )
    app.state.segmentation = load_segmentation()
    return app
