"""Visits: the field agents' app API; publishes collections.visit-outcomes.v1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.visits import fastpath, proof, repository
from services.visits.api import agent_router, team_router
from services.visits.consumers import CONSUMERS
from services.visits.guards import (
    BodyLimit,
    CachingTokenVerifier,
    RateLimiter,
    install_bearer_openapi,
    install_validation_errors,
)
from services.visits.handlers import InvalidFields, Visits
from services.visits.policy import VisitPolicy
from services.visits.settings import VisitsSettings
from shared.compliance import PackCatalog
from shared.runtime import Runtime, create_service_app

SCHEMA = "visits"
SERVICE_DIR = Path(__file__).parent
PURGE_EVERY_S = 3600.0
log = logging.getLogger(__name__)


def bootstrap(settings: VisitsSettings) -> Visits:
    """The compliance packs and the proof-of-visit limits, built once per process (files only)."""
    catalog = (
        PackCatalog.from_toml(settings.compliance_config) if settings.compliance_config else PackCatalog()
    )
    limits = proof.Limits(
        geofence_m=settings.geofence_m,
        accuracy_allowance_m=settings.accuracy_allowance_m,
        max_travel_kmh=settings.max_travel_kmh,
        max_clock_skew_s=settings.max_clock_skew_s,
    )
    return Visits(
        VisitPolicy(catalog),
        limits,
        settings.max_promise_days,
        timedelta(days=settings.max_queue_age_days),
        cash_code_ttl=timedelta(seconds=settings.cash_code_ttl_s),
        cash_code_attempts=settings.cash_code_attempts,
    )


def create_app(settings: VisitsSettings | None = None) -> FastAPI:
    settings = settings or VisitsSettings()

    async def purge_idempotency_keys(runtime: Runtime) -> None:
        """Forget keys older than an offline queue can be: the table would otherwise only grow."""
        while not runtime.stopping.is_set():
            async with runtime.pool.acquire() as conn:
                deleted = await repository.forget_idempotency_keys(conn, settings.idempotency_retention_days)
            if deleted:
                log.info("idempotency keys forgotten", extra={"count": deleted})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.stopping.wait(), PURGE_EVERY_S)

    app = create_service_app(
        title="Fieldcollect visits",
        description=(
            "The field agents' app API: route, check-ins, outcomes and cash; supervisors' team views. "
            "Bearer JWT (EdDSA or RS256) with role `agent` (subject = agent id) or `supervisor` (claim `team`)."
        ),
        settings=settings,
        schema=SCHEMA,
        service_dir=SERVICE_DIR,
        routers=[agent_router, team_router],
        consumers=CONSUMERS,
        background=[purge_idempotency_keys],
        # Requests leave no session state (no SET, LISTEN or advisory lock; the outbox relay
        # undoes its own): no reset query at each release, a round trip saved per request.
        reset_sessions=False,
    )
    app.state.visits = bootstrap(settings)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app.state.token_verifier = CachingTokenVerifier(app.state.token_verifier, settings.token_cache_size)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    fastpath.install(app)
    install_validation_errors(app)
    install_bearer_openapi(app)

    @app.exception_handler(InvalidFields)
    async def _invalid_fields(_: Request, exc: InvalidFields) -> JSONResponse:
        detail = [{"field": field, "reason": reason} for field, reason in exc.problems]
        return JSONResponse({"detail": detail}, status_code=exc.status_code)

    return app
