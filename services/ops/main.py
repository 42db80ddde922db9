"""Ops console: a web page and an API over the event streams, for the `ops` role.

It owns no schema (docs/ops.md argues why), so it has its own small lifespan instead of
`create_service_app`: Kafka clients that join no group, a projection kept in memory, and
an HTTP client for the services' /metrics. Health, /metrics and auth are the shared ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.ops.api import page, router
from services.ops.console import Console, open_console
from services.ops.settings import OpsSettings
from shared.auth import TokenVerifier
from shared.errors import install_error_handlers
from shared.metrics import ScrapeHook, install_observability

SERVICE = "ops"


def create_app(settings: OpsSettings | None = None) -> FastAPI:
    settings = settings or OpsSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_console(settings) as console:
            app.state.console = console
            yield

    app = FastAPI(
        title="Fieldcollect ops console",
        description="Live events, lag, outbox backlogs, the day's funnel, routes and dead letters.",
        lifespan=lifespan,
        version="1",
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(
        settings.token_public_key(), settings.jwt_audience, settings.jwt_issuer
    )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        console: Console = app.state.console
        try:
            await asyncio.wait_for(console.broker.ping(), 3)
            broker = "ok"
        except Exception as exc:
            broker = f"unreachable: {type(exc).__name__}"
        ready = broker == "ok"
        body = {"ready": ready, "checks": {"broker": broker}, "feeds": console.status()}
        return JSONResponse(body, status_code=200 if ready else 503)

    def scrape_hooks() -> list[ScrapeHook]:
        console: Console | None = getattr(app.state, "console", None)
        return [console.observe] if console is not None else []

    install_observability(app, scrape_hooks, hook_timeout_s=10.0)
    app.include_router(page)
    app.include_router(router)
    install_error_handlers(app)
    return app
