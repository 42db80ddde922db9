"""One lifespan for every service: pool, migrations, producer, relay, consumers.

Opened in that order and closed in reverse. Services describe their consumers and call
`service_runtime` from their FastAPI lifespan; nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from shared.consumer import BatchScope, ConsumerRunner, Handler
from shared.db import create_pool, migrate
from shared.kafka import make_producer
from shared.metrics import ScrapeHook, install_observability
from shared.outbox import OutboxRelay
from shared.retry import transient_retry
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    group_id: str
    topics: Sequence[str]
    handlers: Mapping[str, Handler]
    # Apply each batch in one savepoint with one inbox statement (ConsumerRunner._apply_whole).
    whole_batches: bool = False
    # With whole_batches: opened around each batch's handlers (shared.consumer.BatchScope).
    batch_scope: BatchScope | None = None
    # This group's fetch.max.wait.ms when it differs from CONSUMER_FETCH_MAX_WAIT_MS (a group
    # whose latency matters, beside groups that may wait).
    fetch_max_wait_ms: int | None = None


@dataclass
class Runtime:
    settings: ServiceSettings
    schema: str
    pool: Any
    producer: AIOKafkaProducer
    relay: OutboxRelay
    consumers: list[ConsumerRunner] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def service_runtime(
    settings: ServiceSettings,
    schema: str,
    service_dir: Path,
    consumers: Sequence[ConsumerSpec] = (),
    reset_sessions: bool = True,
) -> AsyncIterator[Runtime]:
    pool = await create_pool(
        settings.database_url,
        schema,
        settings.db_pool_min,
        settings.db_pool_max,
        reset_sessions,
        settings.db_plan_cache_mode,
    )
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema, service_dir)
        producer = make_producer(settings, client_id=f"{settings.kafka_client_id}-{schema}")
        async for attempt in transient_retry(attempts=10, max_s=5):
            with attempt:
                await producer.start()
        relay = OutboxRelay(pool, schema, producer, settings.outbox_batch_size, settings.outbox_safety_poll_s)
        runtime = Runtime(settings, schema, pool, producer, relay)
        try:
            if settings.run_consumers:
                await _start_background(runtime, consumers)
            yield runtime
        finally:
            await _stop_background(runtime)
            await producer.stop()
    finally:
        await pool.close()


async def _start_background(runtime: Runtime, consumers: Sequence[ConsumerSpec]) -> None:
    runtime.tasks.append(asyncio.create_task(runtime.relay.run(), name="outbox-relay"))
    for spec in consumers:
        runner = ConsumerRunner(
            group_id=spec.group_id,
            topics=spec.topics,
            handlers=spec.handlers,
            pool=runtime.pool,
            bootstrap_servers=runtime.settings.kafka_bootstrap_servers,
            batch_size=runtime.settings.consumer_batch_size,
            poll_timeout_ms=runtime.settings.consumer_poll_timeout_ms,
            fetch_max_wait_ms=spec.fetch_max_wait_ms or runtime.settings.consumer_fetch_max_wait_ms,
            whole_batches=spec.whole_batches,
            batch_scope=spec.batch_scope,
        )
        async for attempt in transient_retry(attempts=10, max_s=5):
            with attempt:
                await runner.start()
        runtime.consumers.append(runner)
        runtime.tasks.append(asyncio.create_task(runner.run(), name=f"consumer-{spec.group_id}"))


async def _stop_background(runtime: Runtime) -> None:
    runtime.stopping.set()
    for runner in runtime.consumers:
        runner.stop()
    runtime.relay.stop()
    if runtime.tasks:
        done, pending = await asyncio.wait(runtime.tasks, timeout=30)
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception():
                log.error("background task failed", exc_info=task.exception())


def health_router(get_runtime: Callable[[], Runtime]) -> APIRouter:
    """/healthz: the process answers. /readyz: database and broker reachable."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        runtime = get_runtime()
        checks = {
            "database": _check(_database_ok(runtime)),
            "broker": _check(runtime.producer.client.fetch_all_metadata()),
        }
        results = {name: await check for name, check in checks.items()}
        ready = all(v == "ok" for v in results.values())
        return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)

    return router


async def _database_ok(runtime: Runtime) -> None:
    async with runtime.pool.acquire(timeout=2) as conn:
        await conn.fetchval("SELECT 1")


async def _check(probe: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(probe, timeout=3)
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def runtime_of(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


BackgroundFactory = Callable[[Runtime], Coroutine[Any, Any, None]]


def create_service_app(
    *,
    title: str,
    settings: ServiceSettings,
    schema: str,
    service_dir: Path,
    routers: Sequence[APIRouter],
    consumers: Sequence[ConsumerSpec] = (),
    background: Sequence[BackgroundFactory] = (),
    description: str = "",
    reset_sessions: bool = True,
) -> FastAPI:
    """The FastAPI app of a service: its routers, health, auth and one typed lifespan."""
    from shared.auth import TokenVerifier
    from shared.errors import install_error_handlers

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(settings, schema, service_dir, consumers, reset_sessions) as runtime:
            app.state.runtime = runtime
            if settings.run_consumers:
                for factory in background:
                    runtime.tasks.append(asyncio.create_task(factory(runtime)))
            yield

    app = FastAPI(title=title, description=description, lifespan=lifespan, version="1")
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(
        settings.token_public_key(), settings.jwt_audience, settings.jwt_issuer
    )
    app.include_router(health_router(lambda: runtime_of(app)))
    install_observability(app, lambda: _scrape_hooks(app))
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    return app


def _scrape_hooks(app: FastAPI) -> list[ScrapeHook]:
    """Gauges computed when /metrics is read: the outbox backlog of this service's schema and
    its consumer groups' lag."""
    runtime: Runtime | None = getattr(app.state, "runtime", None)
    if runtime is None:
        return []

    async def outbox_backlog() -> None:
        await runtime.relay.observe()

    async def consumer_lag() -> None:
        await asyncio.gather(*(runner.observe_lag() for runner in runtime.consumers))

    return [outbox_backlog, consumer_lag]
