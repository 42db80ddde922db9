"""The console's runtime: broker view, feeds, projection, scraper — one lifespan opens them.

Lag, DLQ depths and the services' figures are read on demand and reused for `cache_s`,
so many open pages (and Prometheus) cost the broker one round of queries per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from services.ops.broker import BrokerView, DlqTopic, GroupLag
from services.ops.feeds import LiveFeed, ProjectionFeed
from services.ops.projection import Projection
from services.ops.scrape import ServiceHealth, scrape_all
from services.ops.settings import OpsSettings
from shared.metrics import CONSUMER_GROUP_LAG, DLQ_DEPTH
from shared.retry import transient_retry

T = TypeVar("T")


class Cached(Generic[T]):
    """A value recomputed at most every `ttl_s`; concurrent readers share one computation."""

    def __init__(self, ttl_s: float, compute: Callable[[], Awaitable[T]]) -> None:
        self._ttl_s = ttl_s
        self._compute = compute
        self._value: T | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        async with self._lock:
            if self._value is None or time.monotonic() - self._at > self._ttl_s:
                self._value = await self._compute()
                self._at = time.monotonic()
            return self._value


@dataclass
class Console:
    settings: OpsSettings
    broker: BrokerView
    live: LiveFeed
    projection: Projection
    projection_feed: ProjectionFeed
    http: httpx.AsyncClient
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        ttl = self.settings.ops_cache_s
        self._lag: Cached[list[GroupLag]] = Cached(ttl, self.broker.lag)
        self._dlq: Cached[list[DlqTopic]] = Cached(ttl, self.broker.dlq_topics)
        self._services: Cached[list[ServiceHealth]] = Cached(
            ttl, lambda: scrape_all(self.http, self.settings.ops_scrape_targets)
        )

    async def lag(self) -> list[GroupLag]:
        return await self._lag.get()

    async def dlq(self) -> list[DlqTopic]:
        return await self._dlq.get()

    async def services(self) -> list[ServiceHealth]:
        return await self._services.get()

    async def observe(self) -> None:
        """Scrape hook: the broker-side lag and DLQ depth gauges, replaced as a whole."""
        lags, dlqs = await self.lag(), await self.dlq()
        CONSUMER_GROUP_LAG.clear()
        for group in lags:
            for p in group.partitions:
                CONSUMER_GROUP_LAG.labels(p.group, p.topic, str(p.partition)).set(p.lag)
        DLQ_DEPTH.clear()
        for topic in dlqs:
            DLQ_DEPTH.labels(topic.group).set(topic.depth)

    def status(self) -> dict[str, Any]:
        return {
            "live_feed_connected": self.live.connected,
            "projection_caught_up": self.projection_feed.caught_up,
            "projection_events": self.projection.applied,
            "viewers": len(self.live.subscribers),
        }


@contextlib.asynccontextmanager
async def open_console(settings: OpsSettings) -> AsyncIterator[Console]:
    """Broker clients, then the feeds; closed in reverse."""
    broker = BrokerView(
        settings.kafka_bootstrap_servers, enable_idempotence=settings.kafka_enable_idempotence
    )
    async for attempt in transient_retry(attempts=10, max_s=5):
        with attempt:
            await broker.start()
    projection = Projection(settings.ops_time_zone, settings.ops_projection_days)
    async with httpx.AsyncClient() as http:
        console = Console(
            settings=settings,
            broker=broker,
            live=LiveFeed(settings.kafka_bootstrap_servers, recent=settings.ops_recent_events),
            projection=projection,
            projection_feed=ProjectionFeed(settings.kafka_bootstrap_servers, projection),
            http=http,
        )
        console.tasks = [
            asyncio.create_task(console.live.run(console.stopping), name="ops-live-feed"),
            asyncio.create_task(console.projection_feed.run(console.stopping), name="ops-projection-feed"),
        ]
        try:
            yield console
        finally:
            console.stopping.set()
            _, pending = await asyncio.wait(console.tasks, timeout=10)
            for task in pending:
                task.cancel()
            await broker.stop()
