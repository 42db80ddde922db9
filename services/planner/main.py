"""Planner: cases in, assigned visits out."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.planner.api import router
from services.planner.consumers import CONSUMERS
from services.planner.settings import PlannerSettings
from shared.runtime import create_service_app

SCHEMA = "planner"
SERVICE_DIR = Path(__file__).parent


def create_app(settings: PlannerSettings | None = None) -> FastAPI:
    return create_service_app(
        title="Fieldcollect planner",
        description="Cases, agents and visit plans; publishes collections.assignments.v1.",
        settings=settings or PlannerSettings(),
        schema=SCHEMA,
        service_dir=SERVICE_DIR,
        routers=[router],
        consumers=CONSUMERS,
    )
