"""Planner: cases in, routed visit plans out (collections.assignments.v1)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.planner import repository
from services.planner.api import router
from services.planner.consumers import CONSUMERS
from services.planner.planning import PlanOptions, plan_day
from services.planner.settings import PlannerSettings
from shared.compliance import PackCatalog
from shared.runtime import Runtime, create_service_app
from shared.worker import run_notified

SCHEMA = "planner"
SERVICE_DIR = Path(__file__).parent


def plan_options(settings: PlannerSettings) -> PlanOptions:
    return PlanOptions(
        visit_minutes=settings.visit_minutes,
        travel_speed_kmh=settings.travel_speed_kmh,
        road_factor=settings.road_factor,
        break_minutes=settings.break_minutes,
        solver=settings.solver,
        time_limit_s=settings.solver_time_limit_s,
        compliance=PackCatalog.from_toml(settings.compliance_config)
        if settings.compliance_config
        else PackCatalog(),
    )


def create_app(settings: PlannerSettings | None = None) -> FastAPI:
    settings = settings or PlannerSettings()
    options = plan_options(settings)

    async def replan_requested_days(runtime: Runtime) -> None:
        """Drain plan requests written by event handlers (coalesced: one plan per region-day)."""

        async def step() -> bool:
            async with runtime.pool.acquire() as conn, conn.transaction():
                request = await repository.take_plan_request(conn)
                if request is None:
                    return False
                await plan_day(conn, request["plan_date"], request["region"], options)
                return True

        await run_notified(
            runtime.pool, f"plan_requests_{SCHEMA}", step, runtime.stopping, settle_s=settings.plan_settle_s
        )

    app = create_service_app(
        title="Fieldcollect planner",
        description="Contact strategy, agents, routed day plans; publishes collections.assignments.v1.",
        settings=settings,
        schema=SCHEMA,
        service_dir=SERVICE_DIR,
        routers=[router],
        consumers=CONSUMERS,
        background=[replan_requested_days],
    )
    app.state.plan_options = options
    return app
