"""Transactional outbox: events commit with the state change; one relay publishes them.

`enqueue` runs inside the caller's transaction. The relay of a schema holds an advisory
lock so exactly one instance publishes (per-account order survives several replicas); it
wakes on the outbox trigger's NOTIFY, drains in id order, and deletes only what the broker
acknowledged (acks=all). A broker outage rolls the claim back and retries with backoff.

A row may also be a *bundle*: many events of one topic staged as one row (bulk imports
write a chunk's events this way, at a fraction of the cost of a row per event). Its first
header is `BUNDLE` (value: the event count); the other headers are a template every event
gets, in which a value `\x00<n>` stands for field n of the event's line. `value` holds one
line per event, `\n`-terminated, fields separated by `\t`: the key first, the payload last
(no field holds a raw newline, compact JSON has none; only the payload may hold a tab). The
relay publishes a bundle's events in line order, in the row's place in id order, and deletes
the row once all are acknowledged; a crash in between republishes the bundle (same event
ids: inboxes dedupe).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import asyncpg
import numpy as np
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
_WORDS = struct.Struct("<I")

_INSERT = "INSERT INTO outbox (topic, key, value, header_keys, header_values) VALUES ($1, $2, $3, $4, $5)"
_COLUMNS = ["topic", "key", "value", "header_keys", "header_values"]
# From this many events on, COPY: one statement (one NOTIFY) instead of one per event.
_COPY_FROM = 50
BUNDLE = "outbox-bundle"
# Bundles' values are read only for the rows the batch keeps (they may be megabytes each).
_CLAIM = (
    "SELECT id, topic, key, CASE WHEN header_keys[1] = 'outbox-bundle' THEN NULL ELSE value END AS value,"
    " header_keys, header_values FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
)
# (topic, key, value, headers, event type, the key's murmur2 if known) of one record to publish.
_Record = tuple[str, bytes | None, bytes, list[tuple[str, bytes]], bytes | None, int | None]


OutboxRow = tuple[str, bytes | None, bytes, list[str], list[bytes]]


def outbox_row(event: Envelope) -> OutboxRow:
    """The outbox columns of an event (topic, key, value, header keys, header values), for a
    statement or function that inserts its own outbox row as part of a larger write."""
    return (event.topic, event.key, event.value(), *_split_headers(event.headers()))


async def enqueue(conn: asyncpg.Connection, *events: Envelope) -> None:
    """Stage events for publication in the caller's transaction (ids follow argument order)."""
    rows = [outbox_row(e) for e in events]
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
                    while (await self._drain())[1]:
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
        """Scrape hook: the backlog (events: a bundle counts its events), its oldest row's age and
        leadership, as gauges."""
        async with self._pool.acquire(timeout=2) as conn:
            row = await conn.fetchrow(
                "SELECT coalesce(sum(CASE WHEN header_keys[1] = 'outbox-bundle'"
                " THEN convert_from(header_values[1], 'UTF8')::bigint ELSE 1 END), 0) AS rows,"
                " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox"
            )
        OUTBOX_BACKLOG.labels(self._schema).set(row["rows"])
        OUTBOX_OLDEST_AGE.labels(self._schema).set(float(row["age"]))
        OUTBOX_RELAY_LEADER.labels(self._schema).set(int(self.is_leader))

    async def drain_once(self) -> int:
        """Publish one batch in id order; returns how many events it published."""
        return (await self._drain())[0]

    async def _drain(self) -> tuple[int, bool]:
        """(events published, whether more may be waiting). A batch holds at most `batch_size`
        events, and at least one row whatever its size."""
        started = time.perf_counter()
        published: collections.Counter[tuple[str, bytes | None]] = collections.Counter()
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await conn.fetch(_CLAIM, self._batch_size)
            if not claimed:
                return 0, False
            rows = _within(claimed, self._batch_size)
            bundles = await _bundle_values(conn, rows)
            await asyncio.gather(*await self._send(_records(rows, bundles), published))
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        count = sum(published.values())
        self.published += count
        OUTBOX_PUBLISH_SECONDS.labels(self._schema).observe(time.perf_counter() - started)
        for (topic, event_type), n in published.items():
            observe_produced(self._schema, topic, _text(event_type), n)
        return count, len(rows) < len(claimed) or len(claimed) == self._batch_size

    async def _send(
        self, records: Iterable[_Record], published: collections.Counter[tuple[str, bytes | None]]
    ) -> list[asyncio.Future[Any]]:
        """Hand the records to the producer as record batches, one partition's records in order.

        Batches rather than one `send` per record: the same records, keys, partitions and
        order, at a fraction of the client's per-message cost. The partition is the one
        `send` would choose (the default murmur2 partitioner, as in the Java client).
        Records are consumed one at a time: each is garbage once in its batch, so a large
        batch does not set the garbage collector off (measured: that cost more than the rest).
        """
        builders: dict[tuple[str, int], list[Any]] = {}
        partitions: dict[str, list[int]] = {}
        for topic, key, value, headers, event_type, key_hash in records:
            if topic not in partitions:
                partitions[topic] = sorted(await self._producer.partitions_for(topic))
            ids = partitions[topic]
            if key_hash is None:
                tp = (topic, _partition(key, ids))
            else:  # what _partition answers, from the hash computed with the bundle's others
                tp = (topic, ids[(key_hash & 0x7FFFFFFF) % len(ids)])
            batches = builders.get(tp)
            if batches is None:
                batches = builders[tp] = [self._producer.create_batch()]
            if batches[-1].append(timestamp=None, key=key, value=value, headers=headers) is None:
                batches.append(self._producer.create_batch())
                if batches[-1].append(timestamp=None, key=key, value=value, headers=headers) is None:
                    raise ValueError(f"an outbox record for {topic} is larger than the producer's batch size")
            published[topic, event_type] += 1
        futures = []
        for (topic, partition), batches in builders.items():
            for batch in batches:
                batch.close()
                futures.append(await self._producer.send_batch(batch, topic, partition=partition))
        return futures

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _partition(key: bytes | None, partitions: list[int]) -> int:
    """The partition `send` would choose: DefaultPartitioner's, with a faster murmur2."""
    if key is None:
        return int(_PARTITIONER(key, partitions, partitions))
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (aiokafka.partitioner.murmur2, the Java client's), word by word: the
    relay hashes every key it publishes, and this is twice as fast as the byte-wise one."""
    m = 0x5BD1E995
    length = len(data)
    h = 0x9747B28C ^ length
    whole = length & ~3
    for (k,) in _WORDS.iter_unpack(data[:whole]):
        k = (k * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length & 3
    if rest:
        if rest == 3:
            h ^= data[whole + 2] << 16
        if rest >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def _event_type(keys: Sequence[str], values: Sequence[bytes]) -> bytes | None:
    try:
        return bytes(values[keys.index("ce_type")])
    except ValueError:
        return None


def _text(event_type: bytes | None) -> str | None:
    return None if event_type is None else event_type.decode("utf-8", "replace")


def _events_in(row: asyncpg.Record) -> int:
    keys = row["header_keys"]
    return int(row["header_values"][0]) if keys and keys[0] == BUNDLE else 1


def _within(rows: Sequence[asyncpg.Record], budget: int) -> Sequence[asyncpg.Record]:
    """The rows, in order, while their events fit the budget (at least the first row)."""
    total = 0
    for i, row in enumerate(rows):
        total += _events_in(row)
        if total > budget and i > 0:
            return rows[:i]
    return rows


async def _bundle_values(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> dict[int, bytes]:
    bundled = [r["id"] for r in rows if r["value"] is None]
    if not bundled:
        return {}
    fetched = await conn.fetch("SELECT id, value FROM outbox WHERE id = ANY($1::bigint[])", bundled)
    return {r["id"]: r["value"] for r in fetched}


def _records(rows: Sequence[asyncpg.Record], bundles: dict[int, bytes]) -> Iterator[_Record]:
    for r in rows:
        keys, values = r["header_keys"], r["header_values"]
        if r["value"] is None:
            yield from _unbundle(r["topic"], keys[1:], values[1:], bundles[r["id"]])
        else:
            headers = list(zip(keys, values, strict=True))
            yield r["topic"], r["key"], r["value"], headers, _event_type(keys, values), None


def _unbundle(topic: str, keys: Sequence[str], values: Sequence[bytes], lines: bytes) -> Iterator[_Record]:
    """A bundle's events: the template's headers with each event's own fields filled in."""
    template = list(zip(keys, values, strict=True))
    slots = [(i, k, int(v[1:])) for i, (k, v) in enumerate(template) if v[:1] == b"\x00"]
    type_field = next((field for _, k, field in slots if k == "ce_type"), None)
    # The payload is the field after the last one the template uses: it may hold anything.
    splits = max((field for _, _, field in slots), default=0) + 1
    events = [line.split(b"\t", splits) for line in lines.split(b"\n") if line]
    hashes = murmur2_many([fields[0] for fields in events])
    for fields, key_hash in zip(events, hashes, strict=True):
        headers = template.copy()
        for i, k, field in slots:
            headers[i] = (k, fields[field])
        yield (
            topic,
            fields[0],
            fields[-1],
            headers,
            fields[type_field] if type_field is not None else None,
            key_hash,
        )


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """`murmur2` of many keys at once (a bundle's), with numpy: keys of one length are hashed
    as the rows of one array, a fraction of the per-key cost of `murmur2`."""
    by_length: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(i)
    hashes = [0] * len(keys)
    m = np.uint32(0x5BD1E995)
    with np.errstate(over="ignore"):
        for length, indexes in by_length.items():
            if len(indexes) < 8:  # numpy's set-up costs more than a few keys
                for i in indexes:
                    hashes[i] = murmur2(keys[i])
                continue
            data = np.frombuffer(b"".join(keys[i] for i in indexes), dtype=np.uint8).reshape(
                len(indexes), length
            )
            whole = length & ~3
            h = np.full(len(indexes), 0x9747B28C ^ length, dtype=np.uint32)
            words = np.ascontiguousarray(data[:, :whole]).view("<u4")
            for j in range(whole // 4):
                k = words[:, j] * m
                k = (k ^ (k >> np.uint32(24))) * m
                h = (h * m) ^ k
            rest = length & 3
            if rest:
                tail = data[:, whole:].astype(np.uint32)
                if rest == 3:
                    h ^= tail[:, 2] << np.uint32(16)
                if rest >= 2:
                    h ^= tail[:, 1] << np.uint32(8)
                h = (h ^ tail[:, 0]) * m
            h = (h ^ (h >> np.uint32(13))) * m
            h ^= h >> np.uint32(15)
            for i, value in zip(indexes, h.tolist(), strict=True):
                hashes[i] = value
    return hashes
