"""The console's two readers of the event topics, both without a consumer group.

`LiveFeed` starts at the latest offsets and fans every new record out to the viewers'
streams (and a short buffer for newcomers), counting per-topic rates as it goes.
`ProjectionFeed` starts at the first record of the projection window (by timestamp) and
keeps the console's own projection (funnel, routes) current. Neither commits anything,
so they take no partition from any service and cost the services nothing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.ops.broker import highwaters
from services.ops.projection import Projection
from services.ops.redact import redacted_payload
from shared.events import EventDecodeError, decode
from shared.events.envelope import header_map
from shared.events.topics import ALL_TOPICS
from shared.logging import parse_traceparent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One record as the console shows it: CloudEvents attributes and a redacted payload."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    account: str | None
    type: str | None
    id: str | None
    source: str | None
    time: str | None
    correlation_id: str | None
    causation_id: str | None
    trace_id: str | None
    payload: Any
    note: str | None

    @classmethod
    def of(cls, record: ConsumerRecord) -> LiveEvent:
        headers = header_map(record.headers)
        trace = parse_traceparent(headers.get("traceparent"))
        payload, note = redacted_payload(record.value)
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            account=record.key.decode("utf-8", "replace") if record.key is not None else None,
            type=headers.get("ce_type"),
            id=headers.get("ce_id"),
            source=headers.get("ce_source"),
            time=headers.get("ce_time"),
            correlation_id=headers.get("ce_correlationid"),
            causation_id=headers.get("ce_causationid"),
            trace_id=trace.trace_id if trace else None,
            payload=payload,
            note=note,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            "account": self.account,
            "type": self.type,
            "id": self.id,
            "source": self.source,
            "time": self.time,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "trace_id": self.trace_id,
            "payload": self.payload,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class EventFilter:
    topic: str | None = None
    type: str | None = None
    account: str | None = None

    def matches(self, event: LiveEvent) -> bool:
        return (
            (not self.topic or event.topic == self.topic)
            and (not self.type or event.type == self.type)
            and (not self.account or event.account == self.account)
        )


class Subscription:
    """One viewer's stream: a bounded queue; a slow viewer loses events, never the feed."""

    def __init__(self, event_filter: EventFilter, maxsize: int = 1000) -> None:
        self.filter = event_filter
        self.queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: LiveEvent) -> None:
        if self.filter.matches(event):
            try:
                self.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1


class RateMeter:
    """Records per second per topic over the last `window_s` seconds, in 1-second buckets."""

    def __init__(self, window_s: int = 120) -> None:
        self.window_s = window_s
        self._buckets: dict[str, collections.deque[list[int]]] = collections.defaultdict(collections.deque)
        self.totals: collections.Counter[str] = collections.Counter()

    def add(self, topic: str, count: int = 1, now: float | None = None) -> None:
        second = int(now if now is not None else time.time())
        buckets = self._buckets[topic]
        if buckets and buckets[-1][0] >= second:  # same second (or the clock stepped back)
            buckets[-1][1] += count
        else:
            buckets.append([second, count])
        while buckets and buckets[0][0] <= second - self.window_s:
            buckets.popleft()
        self.totals[topic] += count

    def snapshot(self, topics: Sequence[str], now: float | None = None, series_s: int = 60) -> dict[str, Any]:
        """Per topic: mean rates over 10 s and 60 s and the last `series_s` seconds, oldest first."""
        current = int(now if now is not None else time.time())
        result = {}
        for topic in topics:
            per_second = {bucket[0]: bucket[1] for bucket in self._buckets.get(topic, ())}
            series = [per_second.get(s, 0) for s in range(current - series_s + 1, current + 1)]
            result[topic] = {
                "rate_10s": round(sum(series[-10:]) / 10, 2),
                "rate_60s": round(sum(series[-60:]) / min(60, series_s), 2),
                "series": series,
                "total": self.totals[topic],
            }
        return result


class LiveFeed:
    def __init__(self, bootstrap_servers: str, topics: Sequence[str] = ALL_TOPICS, recent: int = 500) -> None:
        self._bootstrap = bootstrap_servers
        self.topics = list(topics)
        self.recent: collections.deque[LiveEvent] = collections.deque(maxlen=recent)
        self.rates = RateMeter()
        self.subscribers: set[Subscription] = set()
        self.connected = False
        self._positions: dict[TopicPartition, int] = {}

    def publish(self, event: LiveEvent) -> None:
        self.recent.append(event)
        self.rates.add(event.topic)
        for subscriber in list(self.subscribers):
            subscriber.offer(event)

    @contextlib.contextmanager
    def subscribe(self, event_filter: EventFilter) -> Iterator[Subscription]:
        subscription = Subscription(event_filter)
        self.subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self.subscribers.discard(subscription)

    def latest(self, event_filter: EventFilter, limit: int = 100) -> list[LiveEvent]:
        """The newest buffered events that match, oldest first."""
        matching = [e for e in reversed(self.recent) if event_filter.matches(e)][:limit]
        return matching[::-1]

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self._follow(stopping)
            except Exception as exc:
                self.connected = False
                log.warning("live feed reconnecting", extra={"error": type(exc).__name__})
                await _sleep_unless(stopping, 2.0)

    async def _follow(self, stopping: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, client_id="fieldcollect-ops-live"
        )
        await consumer.start()
        try:
            tps = await _wait_for_partitions(consumer, self.topics, stopping)
            consumer.assign(tps)
            fresh = [tp for tp in tps if tp not in self._positions]
            if fresh:
                self._positions.update(await highwaters(consumer, fresh))
            for tp in tps:
                consumer.seek(tp, self._positions[tp])
            self.connected = True
            while not stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=1000)
                for tp, records in batch.items():
                    for record in records:
                        self.publish(LiveEvent.of(record))
                    self._positions[tp] = records[-1].offset + 1
        finally:
            self.connected = False
            await consumer.stop()


class ProjectionFeed:
    def __init__(
        self, bootstrap_servers: str, projection: Projection, topics: Sequence[str] = ALL_TOPICS
    ) -> None:
        self._bootstrap = bootstrap_servers
        self.projection = projection
        self.topics = list(topics)
        self.caught_up = False
        self.undecodable = 0
        self._positions: dict[TopicPartition, int] = {}
        self._targets: dict[TopicPartition, int] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self._follow(stopping)
            except Exception as exc:
                log.warning("projection feed reconnecting", extra={"error": type(exc).__name__})
                await _sleep_unless(stopping, 2.0)

    def window_start_ms(self, now: datetime | None = None) -> int:
        first_day = self.projection.today(now) - timedelta(days=self.projection.days_kept)
        start = datetime.combine(first_day, datetime.min.time(), tzinfo=self.projection.tz)
        return int(start.timestamp() * 1000)

    async def _follow(self, stopping: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            client_id="fieldcollect-ops-projection",
        )
        await consumer.start()
        try:
            tps = await _wait_for_partitions(consumer, self.topics, stopping)
            consumer.assign(tps)
            await self._position(consumer, tps)
            last_evict = time.monotonic()
            while not stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                for tp, records in batch.items():
                    for record in records:
                        self._apply(record)
                    self._positions[tp] = records[-1].offset + 1
                if not self.caught_up:
                    self.caught_up = all(
                        self._positions.get(tp, 0) >= end for tp, end in self._targets.items()
                    )
                if time.monotonic() - last_evict > 60:
                    self.projection.evict()
                    last_evict = time.monotonic()
        finally:
            await consumer.stop()

    async def _position(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        """Resume where this feed was; else from the window's first record, by timestamp."""
        fresh = [tp for tp in tps if tp not in self._positions]
        if fresh:
            ends = await highwaters(consumer, fresh)
            self._targets.update(ends)
            found = await consumer.offsets_for_times(dict.fromkeys(fresh, self.window_start_ms()))
            for tp in fresh:
                hit = found.get(tp)
                # No record at or after the time: Kafka answers None, the dev broker a -1 timestamp.
                self._positions[tp] = hit.offset if hit is not None and hit.timestamp >= 0 else ends[tp]
        for tp in tps:
            consumer.seek(tp, self._positions[tp])
        if all(self._positions[tp] >= self._targets.get(tp, 0) for tp in tps):
            self.caught_up = True

    def _apply(self, record: ConsumerRecord) -> None:
        try:
            event = decode(record.value, record.headers)
        except EventDecodeError:
            self.undecodable += 1
            return
        self.projection.apply(event)


async def _wait_for_partitions(
    consumer: AIOKafkaConsumer, topics: Sequence[str], stopping: asyncio.Event
) -> list[TopicPartition]:
    """Every partition of the topics, once the broker knows them all (topics may come later)."""
    while True:
        cluster = await consumer._client.fetch_all_metadata()
        found = {t: cluster.partitions_for_topic(t) for t in topics}
        if all(found.values()) or stopping.is_set():
            return [TopicPartition(t, p) for t in topics for p in sorted(found[t] or ())]
        await _sleep_unless(stopping, 2.0)


async def _sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
