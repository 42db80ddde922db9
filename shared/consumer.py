"""The one consumer runner: batches, inbox dedupe, retries, dead letters, manual commits.

Per partition batch: one transaction holds every handler's effect, the outbox rows those
effects cause and the inbox rows; offsets are committed only after it commits. A message
that cannot be processed goes (original bytes + error headers) to the group's dead-letter
topic through the same outbox, and the partition keeps flowing. Transient failures retry
the batch with backoff; when retries run out the batch is re-read later, never skipped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from opentelemetry.trace import Span, SpanKind

from shared.events import Envelope, EventDecodeError, decode
from shared.events.topics import dead_letter_topic
from shared.logging import log_context
from shared.metrics import (
    CONSUMER_BATCH_FAILURES,
    CONSUMER_BATCH_SECONDS,
    CONSUMER_LAG,
    EVENT_HANDLER_SECONDS,
    event_type_label,
    observe_consumed,
    observe_event_age,
)
from shared.outbox import enqueue_raw
from shared.retry import is_transient, transient_retry
from shared.tracing import fail, start_span

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
# Opt-in, whole batches only: opened around a batch's handlers inside its transaction, with the
# batch's events. A service may read ahead for the whole batch and stage writes that it flushes
# when the block ends without an error (an error rolls the batch back as usual).
BatchScope = Callable[[asyncpg.Connection, Sequence[Envelope]], AbstractAsyncContextManager[None]]
# (event type label, outcome, error class) -> records, counted once the batch commits.
Tally = collections.Counter[tuple[str, str, str]]


class PermanentError(Exception):
    """A handler's verdict that this event can never be applied (goes to the DLQ).

    Its message must name fields and reasons only, never personal data.
    """


@dataclass
class ConsumerStats:
    processed: int = 0
    duplicates: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    batches: int = 0
    last_batch_at: float = 0.0


class ConsumerRunner:
    def __init__(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        handlers: Mapping[str, Handler],
        pool: Any,
        bootstrap_servers: str,
        batch_size: int = 500,
        poll_timeout_ms: int = 200,
        retry_attempts: int = 5,
        fetch_max_wait_ms: int = 500,
        whole_batches: bool = False,
        batch_scope: BatchScope | None = None,
    ) -> None:
        self.group_id = group_id
        self._whole_batches = whole_batches
        self._batch_scope = batch_scope
        self.topics = list(topics)
        self._handlers = dict(handlers)
        self._pool = pool
        self._batch_size = batch_size
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_attempts = retry_attempts
        self._dlq_topic = dead_letter_topic(group_id)
        self._stopping = asyncio.Event()
        self.stats = ConsumerStats()
        self._lag_series: set[TopicPartition] = set()
        self._pending_commit: asyncio.Task[None] | None = None
        self.consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
            fetch_max_wait_ms=fetch_max_wait_ms,
        )

    async def start(self) -> None:
        await self.consumer.start()

    def stop(self) -> None:
        """Ask the loop to finish its current batch, commit, and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                batch = await self.consumer.getmany(
                    timeout_ms=self._poll_timeout_ms, max_records=self._batch_size
                )
                if batch:
                    await self._process_batch(batch)
        finally:
            self._forget_lag(set())
            with contextlib.suppress(Exception):
                await self._settle_commit()
            with contextlib.suppress(Exception):
                await self.consumer.stop()

    async def observe_lag(self) -> None:
        """Set `fieldcollect_consumer_lag_messages` for the partitions this member is assigned
        (a scrape hook): the highwater its fetches last saw minus the group's committed offset,
        asked of the coordinator per explicit partition; without a commit, from the log start.
        Partitions not fetched yet have no series; the series of partitions moved away are removed.
        """
        highwaters = {tp: self.consumer.highwater(tp) for tp in self.consumer.assignment()}
        fetched = sorted((tp for tp, hw in highwaters.items() if hw is not None), key=str)
        committed = await asyncio.gather(*(self.consumer.committed(tp) for tp in fetched))
        never = [tp for tp, offset in zip(fetched, committed, strict=True) if offset is None]
        starts = await self.consumer.beginning_offsets(never) if never else {}
        for tp, offset in zip(fetched, committed, strict=True):
            done = starts.get(tp, 0) if offset is None else offset
            CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(max(highwaters[tp] - done, 0))
        self._forget_lag(set(fetched))

    def _forget_lag(self, keep: set[TopicPartition]) -> None:
        for tp in self._lag_series - keep:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.group_id, tp.topic, str(tp.partition))
        self._lag_series = keep

    async def wait_for_assignment(self, timeout_s: float = 60.0) -> set[TopicPartition]:
        deadline = time.monotonic() + timeout_s
        while not self.consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.group_id}: no partitions assigned")
            await asyncio.sleep(0.1)
        return set(self.consumer.assignment())

    async def _process_batch(self, batch: Mapping[TopicPartition, list[ConsumerRecord]]) -> None:
        one_topic = len({tp.topic for tp in batch}) == 1
        if self._whole_batches and len(batch) > 1 and one_topic and await self._apply_poll(batch):
            self.stats.batches += 1
            self.stats.last_batch_at = time.time()
            return
        for tp, records in batch.items():
            started = time.perf_counter()
            try:
                async for attempt in transient_retry(self._retry_attempts):
                    with attempt:
                        await self._apply(tp, records)
            except Exception as exc:
                # Retries exhausted (or a bug): re-read from the first record later.
                CONSUMER_BATCH_FAILURES.labels(self.group_id, tp.topic, type(exc).__name__).inc()
                log.error(
                    "batch failed, will re-read",
                    extra={
                        "group": self.group_id,
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "offset": records[0].offset,
                        "error": type(exc).__name__,
                    },
                )
                self._rewind(batch, tp)
                await asyncio.sleep(1.0)
                return
            await self._commit(tp, records[-1].offset + 1)
            CONSUMER_BATCH_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)
        self.stats.batches += 1
        self.stats.last_batch_at = time.time()

    async def _apply_poll(self, batch: Mapping[TopicPartition, list[ConsumerRecord]]) -> bool:
        """Whole batches of one topic: every partition of a poll in one transaction, one offset commit.

        One commit (one WAL flush) and one broker round trip per poll instead of one per
        partition: a poll usually holds a few records of each partition. False, with nothing
        applied, when the poll needs the per-partition path (an undecodable record or an event
        that fails for good: that path dead-letters exactly the bad ones).
        """
        started = time.perf_counter()
        records = [record for partition_records in batch.values() for record in partition_records]
        counts, tally = ConsumerStats(), Tally()
        try:
            async for attempt in transient_retry(self._retry_attempts):
                with attempt:
                    counts, tally = ConsumerStats(), Tally()
                    applied = await self._apply_whole(records, counts, tally)
        except Exception as exc:
            CONSUMER_BATCH_FAILURES.labels(self.group_id, "*", type(exc).__name__).inc()
            log.error(
                "poll failed, will re-read", extra={"group": self.group_id, "error": type(exc).__name__}
            )
            self._rewind(batch, next(iter(batch)))
            await asyncio.sleep(1.0)
            return True
        if not applied:
            return False
        await self._commit_many(
            {tp: partition_records[-1].offset + 1 for tp, partition_records in batch.items()}
        )
        observe_consumed(self.group_id, records[0].topic, tally)
        for record in records:
            observe_event_age(self.group_id, record.topic, record.timestamp)
        self._count(counts)
        CONSUMER_BATCH_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)
        return True

    def _rewind(self, batch: Mapping[TopicPartition, list[ConsumerRecord]], failed: TopicPartition) -> None:
        started = False
        for tp, records in batch.items():
            started = started or tp == failed
            if started:
                with contextlib.suppress(IllegalStateError):
                    self.consumer.seek(tp, records[0].offset)

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        await self._commit_many({tp: offset})

    async def _commit_many(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit `offsets` in the background: the next poll's transaction overlaps the broker
        round trip. Their own transaction has committed; commits still go out one at a time, in
        order, and a failed one raises here, at the next commit, as if it had been awaited."""
        await self._settle_commit()
        self._pending_commit = asyncio.create_task(self._send_commit(offsets))

    async def _settle_commit(self) -> None:
        pending, self._pending_commit = self._pending_commit, None
        if pending is not None:
            await pending

    async def _send_commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # Partition moved to another member mid-batch: it re-reads, the inbox dedupes.
            log.warning(
                "commit refused after rebalance", extra={"group": self.group_id, "error": type(exc).__name__}
            )

    async def _apply(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        counts = ConsumerStats()
        tally: Tally = collections.Counter()
        if not (self._whole_batches and await self._apply_whole(records, counts, tally)):
            async with self._pool.acquire() as conn, conn.transaction():
                for record in records:
                    await self._apply_one(conn, record, counts, tally)
        observe_consumed(self.group_id, tp.topic, tally)
        for record in records:
            observe_event_age(self.group_id, record.topic, record.timestamp)
        self._count(counts)

    def _count(self, counts: ConsumerStats) -> None:
        self.stats.processed += counts.processed
        self.stats.duplicates += counts.duplicates
        self.stats.skipped += counts.skipped
        self.stats.dead_lettered += counts.dead_lettered

    async def _apply_whole(self, records: list[ConsumerRecord], counts: ConsumerStats, tally: Tally) -> bool:
        """Opt-in fast path: the batch in one transaction without savepoints, its inbox rows in
        one statement.

        Saves three round trips per event (savepoint, inbox row, release). Returns False with
        nothing applied (rolled back) when a record is undecodable or a handler fails for good:
        the caller then applies the batch event by event in a new transaction, which
        dead-letters exactly the bad ones.
        """
        events: list[tuple[ConsumerRecord, Envelope | None]] = []
        for record in records:
            event_type = _header(record, "ce_type")
            if event_type is not None and event_type not in self._handlers:
                events.append((record, None))
                continue
            try:
                events.append((record, decode(record.value, record.headers)))
            except EventDecodeError:
                return False
        batch_counts, batch_tally = ConsumerStats(), Tally()
        try:
            async with self._pool.acquire() as conn, conn.transaction(), self._scope(conn, events):
                await self._handle_whole(conn, events, batch_counts, batch_tally)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.info(
                "batch applied event by event", extra={"group": self.group_id, "error": type(exc).__name__}
            )
            return False
        counts.processed += batch_counts.processed
        counts.duplicates += batch_counts.duplicates
        counts.skipped += batch_counts.skipped
        tally.update(batch_tally)
        return True

    def _scope(
        self, conn: asyncpg.Connection, events: list[tuple[ConsumerRecord, Envelope | None]]
    ) -> AbstractAsyncContextManager[None]:
        if self._batch_scope is None:
            return contextlib.nullcontext()
        return self._batch_scope(conn, [event for _, event in events if event is not None])

    async def _handle_whole(
        self,
        conn: asyncpg.Connection,
        events: list[tuple[ConsumerRecord, Envelope | None]],
        counts: ConsumerStats,
        tally: Tally,
    ) -> None:
        wanted = [(record, event) for record, event in events if event is not None]
        new = set(
            await conn.fetchval(
                _INBOX_MANY,
                self.group_id,
                [e.id for _, e in wanted],
                [r.topic for r, _ in wanted],
                [r.partition for r, _ in wanted],
                [r.offset for r, _ in wanted],
            )
        )
        for record, event in events:
            if event is None:
                counts.skipped += 1
                tally[event_type_label(_header(record, "ce_type")), "skipped", ""] += 1
            elif event.id not in new:
                counts.duplicates += 1
                tally[event_type_label(event.type), "duplicate", ""] += 1
            else:
                new.discard(event.id)  # a second copy in the same batch is a duplicate
                await self._handle_fast(conn, record, event)
                counts.processed += 1
                tally[event_type_label(event.type), "processed", ""] += 1

    async def _handle_fast(self, conn: asyncpg.Connection, record: ConsumerRecord, event: Envelope) -> None:
        started = time.perf_counter()
        with (
            log_context(event_id=str(event.id), correlation_id=event.correlation_id or str(event.id)),
            _consume_span(self.group_id, record, event) as sp,
        ):
            try:
                await self._handlers[event.type](conn, event)
            finally:
                EVENT_HANDLER_SECONDS.labels(self.group_id, event.type).observe(time.perf_counter() - started)
            sp.set_attribute("fieldcollect.outcome", "processed")

    async def _apply_one(
        self, conn: asyncpg.Connection, record: ConsumerRecord, counts: ConsumerStats, tally: Tally
    ) -> None:
        event_type = _header(record, "ce_type")
        label = event_type_label(event_type)
        if event_type is not None and event_type not in self._handlers:
            counts.skipped += 1
            tally[label, "skipped", ""] += 1
            return
        try:
            event = decode(record.value, record.headers)
        except EventDecodeError as exc:
            log.warning(
                "undecodable record dead-lettered",
                extra={"group": self.group_id, "topic": record.topic, "offset": record.offset, "type": label},
            )
            await self._dead_letter(conn, record, "EventDecodeError", str(exc))
            counts.dead_lettered += 1
            tally[label, "dead_lettered", "EventDecodeError"] += 1
            return
        with (
            log_context(event_id=str(event.id), correlation_id=event.correlation_id or str(event.id)),
            _consume_span(self.group_id, record, event) as sp,
        ):
            outcome, error = await self._handle(conn, record, event)
            sp.set_attribute("fieldcollect.outcome", outcome)
            if outcome == "dead_lettered":
                fail(sp, error)
        if outcome == "processed":
            counts.processed += 1
        elif outcome == "duplicate":
            counts.duplicates += 1
        else:
            counts.dead_lettered += 1
        tally[(label, outcome, error)] += 1

    async def _handle(
        self, conn: asyncpg.Connection, record: ConsumerRecord, event: Envelope
    ) -> tuple[str, str]:
        """Apply one decoded event; returns (outcome, error class).

        The inbox row shares the handler's savepoint: a dead-lettered event is not
        "applied", so replaying it from the DLQ runs the handler again.
        """
        started = time.perf_counter()
        try:
            async with conn.transaction():
                first_time = await conn.fetchval(
                    'INSERT INTO inbox (consumer, event_id, topic, partition, "offset")'
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
                    self.group_id,
                    event.id,
                    record.topic,
                    record.partition,
                    record.offset,
                )
                if not first_time:
                    return "duplicate", ""
                await self._handlers[event.type](conn, event)
        except Exception as exc:
            if is_transient(exc):
                raise
            reason = str(exc) if isinstance(exc, PermanentError) else "unexpected handler error"
            log.error(
                "event dead-lettered",
                extra={
                    "group": self.group_id,
                    "event_id": str(event.id),
                    "type": event.type,
                    "error": type(exc).__name__,
                },
                exc_info=not isinstance(exc, PermanentError),
            )
            await self._dead_letter(conn, record, type(exc).__name__, reason)
            return "dead_lettered", type(exc).__name__
        finally:
            EVENT_HANDLER_SECONDS.labels(self.group_id, event.type).observe(time.perf_counter() - started)
        return "processed", ""

    async def _dead_letter(
        self, conn: asyncpg.Connection, record: ConsumerRecord, error: str, reason: str
    ) -> None:
        error_headers = [
            ("dlq_error_class", error.encode()),
            ("dlq_error_reason", reason[:1000].encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_consumer_group", self.group_id.encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        original = [(k, v) for k, v in record.headers or () if not k.startswith("dlq_")]
        await enqueue_raw(conn, self._dlq_topic, record.key, record.value or b"", [*original, *error_headers])


# Inbox rows of a whole batch; the ids actually inserted are the events seen for the first time.
_INBOX_MANY = """
WITH new AS (
    INSERT INTO inbox (consumer, event_id, topic, partition, "offset")
    SELECT $1, e.event_id, e.topic, e.partition, e.offset
    FROM unnest($2::uuid[], $3::text[], $4::integer[], $5::bigint[]) AS e(event_id, topic, partition, "offset")
    ON CONFLICT DO NOTHING RETURNING event_id
)
SELECT ARRAY(SELECT event_id FROM new)
"""


def _consume_span(group: str, record: ConsumerRecord, event: Envelope) -> AbstractContextManager[Span]:
    """The span of applying one event: in the event's trace, under its producer span."""
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": group,
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "messaging.message.id": str(event.id),
    }
    return start_span(f"consume {event.type}", event.traceparent, SpanKind.CONSUMER, attributes)


def _header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode("utf-8", "replace")
    return None
