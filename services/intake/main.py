"""Intake: core banking's snapshots in, delinquency events out."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.intake.api import router
from services.intake.consumers import consumers
from services.intake.file_import import ImportRunner
from services.intake.segmentation import load_segmentation
from services.intake.settings import IntakeSettings
from shared.runtime import Runtime, create_service_app

SCHEMA = "intake"
SERVICE_DIR = Path(__file__).parent


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    segmentation = load_segmentation()
    imports = ImportRunner(segmentation, settings.import_chunk_rows)

    async def uploaded_imports(runtime: Runtime) -> None:
        await imports.resume_and_serve(runtime.pool, runtime.stopping)

    app = create_service_app(
        title="Fieldcollect intake",
        description="Account snapshots from core banking; publishes collections.delinquency.v1.",
        settings=settings,
        schema=SCHEMA,
        service_dir=SERVICE_DIR,
        routers=[router],
        consumers=consumers(settings, segmentation),
        background=[uploaded_imports],
    )
    app.state.segmentation = segmentation
    app.state.imports = imports
    return app
