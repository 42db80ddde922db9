"""Transactional outbox: events commit with the state change; one relay publishes them.

`enqueue` runs inside the caller's transaction. The relay of a schema holds an advisory
lock so exactly one instance publishes (per-account order survives several replicas); it
wakes on the outbox trigger's NOTIFY, drains in id order, and deletes only what the broker
acknowledged (acks=all). A broker outage rolls the claim back and retries with backoff.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from shared.events import Envelope
from shared.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISH_SECONDS,
    OUTBOX_RELAY_ERRORS,
    OUTBOX_RELAY_LEADER,
    observe_produced,
)
from shared.retry import is_transient

log = logging.getLogger(__name__)
_PARTITIONER = DefaultPartitioner()

_INSERT = "INSERT INTO outbox (topic, key, value, header_keys, header_values) VALUES ($1, $2, $3, $4, $5)"
_COLUMNS = ["topic", "key", "value", "header_keys", "header_values"]
# From this many events on, COPY: one statement (one NOTIFY) instead of one per event.
_COPY_FROM = 50


async def enqueue(conn: asyncpg.Connection, *events: Envelope) -> None:
    """Stage events for publication in the caller's transaction (ids follow argument order)."""
    rows = [(e.topic, e.key, e.value(), *_split_headers(e.headers())) for e in events]
    if len(rows) >= _COPY_FROM:
        await conn.copy_records_to_table("outbox", records=rows, columns=_COLUMNS)
    elif len(rows) == 1:
        # The common case of a request's one event: asyncpg's executemany costs twice an execute.
        await conn.execute(_INSERT, *rows[0])
    elif rows:
        await conn.executemany(_INSERT, rows)


async def enqueue_raw(
    conn: asyncpg.Connection,
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
) -> None:
    """Stage a record as is (dead letters keep the original bytes)."""
    await conn.execute(_INSERT, topic, key, value, *_split_headers(headers))


def _split_headers(headers: Sequence[tuple[str, bytes]]) -> tuple[list[str], list[bytes]]:
    return [k for k, _ in headers], [v for _, v in headers]


async def backlog(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox"))


class OutboxRelay:
    """Publishes one schema's outbox to Kafka, woken by LISTEN/NOTIFY."""

    def __init__(
        self,
        pool: Any,
        schema: str,
        producer: AIOKafkaProducer,
        batch_size: int = 1000,
        safety_poll_s: float = 5.0,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._producer = producer
        self._batch_size = batch_size
        self._safety_poll_s = safety_poll_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.published = 0
        self.is_leader = False

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                await self._run_as_leader()
                backoff = 0.1
            except Exception as exc:
                OUTBOX_RELAY_ERRORS.labels(self._schema, type(exc).__name__).inc()
                if not is_transient(exc):
                    log.exception("outbox relay failed", extra={"schema": self._schema})
                else:
                    log.warning(
                        "outbox relay retrying",
                        extra={"schema": self._schema, "error": type(exc).__name__},
                    )
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _run_as_leader(self) -> None:
        async with self._pool.acquire() as listener:
            channel = f"outbox_{self._schema}"
            await listener.add_listener(channel, self._on_notify)
            try:
                await self._become_leader(listener)
                while not self._stopping.is_set():
                    self._wake.clear()
                    while await self.drain_once() == self._batch_size:
                        if self._stopping.is_set():
                            return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._safety_poll_s)
            finally:
                self.is_leader = False
                await listener.remove_listener(channel, self._on_notify)
                await listener.execute("SELECT pg_advisory_unlock_all()")

    async def _become_leader(self, listener: asyncpg.Connection) -> None:
        lock_key = f"outbox_relay:{self._schema}"
        while not await listener.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock_key):
            await self._sleep(self._safety_poll_s)
            if self._stopping.is_set():
                return
        self.is_leader = True

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def observe(self) -> None:
        """Scrape hook: the backlog, its oldest row's age and leadership, as gauges."""
        async with self._pool.acquire(timeout=2) as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS rows, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
                " FROM outbox"
            )
        OUTBOX_BACKLOG.labels(self._schema).set(row["rows"])
        OUTBOX_OLDEST_AGE.labels(self._schema).set(float(row["age"]))
        OUTBOX_RELAY_LEADER.labels(self._schema).set(int(self.is_leader))

    async def drain_once(self) -> int:
        """Publish one batch in id order; returns how many rows it published."""
        started = time.perf_counter()
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, topic, key, value, header_keys, header_values FROM outbox"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0
            await asyncio.gather(*await self._send(rows))
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.published += len(rows)
        OUTBOX_PUBLISH_SECONDS.labels(self._schema).observe(time.perf_counter() - started)
        published = collections.Counter(
            (r["topic"], _event_type(r["header_keys"], r["header_values"])) for r in rows
        )
        for (topic, event_type), count in published.items():
            observe_produced(self._schema, topic, event_type, count)
        return len(rows)

    async def _send(self, rows: Sequence[asyncpg.Record]) -> list[asyncio.Future[Any]]:
        """Hand the rows to the producer as record batches, one partition's rows in id order.

        Batches rather than one `send` per record: the same records, keys, partitions and
        order, at a fraction of the client's per-message cost. The partition is the one
        `send` would choose (the default murmur2 partitioner, as in the Java client).
        """
        builders: dict[tuple[str, int], list[Any]] = {}
        partitions: dict[str, list[int]] = {}
        for r in rows:
            topic, key, value = r["topic"], r["key"], r["value"]
            if topic not in partitions:
                partitions[topic] = sorted(await self._producer.partitions_for(topic))
            tp = (topic, _PARTITIONER(key, partitions[topic], partitions[topic]))
            headers = list(zip(r["header_keys"], r["header_values"], strict=True))
            batches = builders.get(tp)
            if batches is None:
                batches = builders[tp] = [self._producer.create_batch()]
            if batches[-1].append(timestamp=None, key=key, value=value, headers=headers) is None:
                batches.append(self._producer.create_batch())
                if batches[-1].append(timestamp=None, key=key, value=value, headers=headers) is None:
                    raise ValueError(f"outbox row {r['id']} is larger than the producer's batch size")
        futures = []
        for (topic, partition), batches in builders.items():
            for batch in batches:
                batch.close()
                futures.append(await self._producer.send_batch(batch, topic, partition=partition))
        return futures

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _event_type(keys: Sequence[str], values: Sequence[bytes]) -> str | None:
    try:
        return bytes(values[keys.index("ce_type")]).decode("utf-8", "replace")
    except ValueError:
        return None
