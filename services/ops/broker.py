"""What the console reads from and writes to the broker, with clients that join no group.

The development broker (Tansu) answers some offset queries unreliably: `end_offsets`,
group-offset listings without explicit partitions, and even ListOffsets(latest) behind
seek_to_end after batched writes (it answered 1 where the log held 42 records). So the
highwater is the one a fetch response carries (`highwaters`), committed offsets come from
the admin client asked about explicit partitions. Both are right on Kafka too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.ops.redact import raw_preview, redacted_payload
from shared.events.topics import ALL_TOPICS, dead_letter_topic
from shared.metrics import DLQ_REPLAYED

log = logging.getLogger(__name__)

DLQ_PREFIX = dead_letter_topic("")


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None
    highwater: int
    lag: int

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "highwater": self.highwater,
            "lag": self.lag,
        }


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "total": self.total,
            "topics": sorted({p.topic for p in self.partitions}),
            "partitions": [p.to_json() for p in self.partitions],
        }


@dataclass(frozen=True, slots=True)
class DlqPartition:
    partition: int
    low: int
    high: int

    @property
    def depth(self) -> int:
        return max(self.high - self.low, 0)


@dataclass(frozen=True, slots=True)
class DlqTopic:
    group: str
    topic: str
    partitions: tuple[DlqPartition, ...]

    @property
    def depth(self) -> int:
        return sum(p.depth for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "topic": self.topic,
            "depth": self.depth,
            "partitions": [
                {"partition": p.partition, "low": p.low, "high": p.high, "depth": p.depth}
                for p in self.partitions
            ],
        }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic: the original bytes plus `dlq_*` error headers."""

    group: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, group: str, record: ConsumerRecord) -> DeadLetter:
        return cls(
            group=group,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value or b"",
            headers=tuple((k, bytes(v)) for k, v in record.headers or ()),
        )

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None

    @property
    def original_topic(self) -> str | None:
        return self.header("dlq_original_topic")

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original headers: everything the dead-lettering added (`dlq_*`) removed."""
        return [(k, v) for k, v in self.headers if not k.startswith("dlq_")]

    def summary(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            "account": self.key.decode("utf-8", "replace") if self.key is not None else None,
            "type": self.header("ce_type"),
            "event_id": self.header("ce_id"),
            "error_class": self.header("dlq_error_class"),
            "error_reason": self.header("dlq_error_reason"),
            "original_topic": self.original_topic,
            "original_partition": _int_or_none(self.header("dlq_original_partition")),
            "original_offset": _int_or_none(self.header("dlq_original_offset")),
            "failed_at": self.header("dlq_failed_at"),
            "size": len(self.value),
        }

    def inspect(self) -> dict[str, Any]:
        payload, not_json = redacted_payload(self.value)
        return {
            **self.summary(),
            "headers": {k: v.decode("utf-8", "replace") for k, v in self.headers},
            "payload": payload,
            "raw_preview": raw_preview(self.value) if not_json else None,
            "payload_note": not_json,
        }


@dataclass(frozen=True, slots=True)
class Replayed:
    dlq_partition: int
    dlq_offset: int
    topic: str
    partition: int
    offset: int

    def to_json(self) -> dict[str, Any]:
        return {
            "dlq_partition": self.dlq_partition,
            "dlq_offset": self.dlq_offset,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
        }


class ReplayError(ValueError):
    """A replay request that cannot be carried out as asked (nothing was published)."""


class BrokerView:
    """Non-group clients for offsets, group commits, dead letters and replays."""

    def __init__(self, bootstrap_servers: str, *, enable_idempotence: bool = False) -> None:
        self._bootstrap = bootstrap_servers
        self._idempotence = enable_idempotence
        self._offsets_lock = asyncio.Lock()

    async def start(self) -> None:
        """Open the clients; on failure close what was opened (start may be retried)."""
        self._offsets = offsets_consumer(self._bootstrap, "fieldcollect-ops-offsets")
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id="fieldcollect-ops")
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id="fieldcollect-ops-replay",
            acks="all",
            enable_idempotence=self._idempotence,
        )
        try:
            await self._offsets.start()
            await self._admin.start()
            await self._producer.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for close in (self._producer.stop, self._admin.close, self._offsets.stop):
            with contextlib.suppress(Exception):
                await close()

    async def ping(self) -> None:
        await self._offsets._client.fetch_all_metadata()

    async def topics(self) -> list[str]:
        return sorted(await self._admin.list_topics())

    async def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        cluster = await self._offsets._client.fetch_all_metadata()
        return [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]

    async def watermarks(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
        """(low, high) per partition, read by seeking a group-less consumer."""
        if not tps:
            return {}
        async with self._offsets_lock:
            self._offsets.assign(list(tps))
            try:
                await self._offsets.seek_to_beginning(*tps)
                lows = {tp: await self._offsets.position(tp) for tp in tps}
                highs = await highwaters(self._offsets, tps)
            finally:
                self._offsets.unsubscribe()
        return {tp: (lows[tp], max(highs[tp], lows[tp])) for tp in tps}

    async def groups(self) -> list[str]:
        listed = await self._admin.list_consumer_groups()
        return sorted({str(group[0]) for group in listed})

    async def committed(self, group: str, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        offsets = await self._admin.list_consumer_group_offsets(group, partitions=list(tps))
        return {tp: (meta.offset if meta.offset >= 0 else None) for tp, meta in offsets.items()}

    async def lag(
        self, groups: Sequence[str] | None = None, topics: Sequence[str] = ALL_TOPICS
    ) -> list[GroupLag]:
        """Lag of every group on the partitions of the topics it has committed on.

        A group consumes a topic when it committed an offset on one of its partitions; its
        partitions without a commit yet count from the low watermark.
        """
        names = list(groups) if groups else await self.groups()
        tps = await self.partitions(topics)
        marks = await self.watermarks(tps)
        result = []
        for group in names:
            committed = await self.committed(group, tps)
            consumed = {tp.topic for tp, offset in committed.items() if offset is not None}
            partitions = []
            for tp in tps:
                if tp.topic not in consumed:
                    continue
                low, high = marks[tp]
                offset = committed.get(tp)
                lag = max(high - (offset if offset is not None else low), 0)
                partitions.append(PartitionLag(group, tp.topic, tp.partition, offset, high, lag))
            result.append(GroupLag(group, tuple(partitions)))
        return result

    async def dlq_topics(self) -> list[DlqTopic]:
        names = [t for t in await self.topics() if t.startswith(DLQ_PREFIX)]
        tps = await self.partitions(names)
        marks = await self.watermarks(tps)
        return [
            DlqTopic(
                group=name.removeprefix(DLQ_PREFIX),
                topic=name,
                partitions=tuple(DlqPartition(tp.partition, *marks[tp]) for tp in tps if tp.topic == name),
            )
            for name in names
        ]

    async def dead_letters(
        self,
        group: str,
        partition: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
    ) -> list[DeadLetter]:
        """Dead letters of a group, oldest first: [start, end] inclusive, else the newest `limit`."""
        topic = dead_letter_topic(group)
        tps = [tp for tp in await self.partitions([topic]) if partition is None or tp.partition == partition]
        marks = await self.watermarks(tps)
        letters: list[DeadLetter] = []
        for tp in tps:
            low, high = marks[tp]
            first = max(low, start if start is not None else high - limit)
            stop = min(high, end + 1 if end is not None else high)
            for record in await self._read(tp, first, stop):
                letters.append(DeadLetter.of(group, record))
        letters.sort(key=lambda d: (d.timestamp_ms, d.partition, d.offset))
        return letters if start is not None else letters[-limit:]

    async def dead_letter(self, group: str, partition: int, offset: int) -> DeadLetter | None:
        found = await self.dead_letters(group, partition, offset, offset)
        return found[0] if found else None

    async def replay(self, group: str, partition: int | None, start: int, end: int) -> list[Replayed]:
        """Republish dead letters [start, end] of one DLQ partition, in offset order.

        Each goes to its original topic with its original key, bytes and headers (the
        `dlq_*` ones removed); the dead letters stay where they are.
        """
        if end < start:
            raise ReplayError("--to is before --from")
        topic = dead_letter_topic(group)
        tps = await self.partitions([topic])
        if not tps:
            raise ReplayError(f"no dead-letter topic {topic}")
        if partition is None:
            if len(tps) > 1:
                raise ReplayError(f"{topic} has {len(tps)} partitions: name one")
            partition = tps[0].partition
        letters = await self.dead_letters(group, partition, start, end)
        if not letters:
            raise ReplayError(f"no dead letters in {topic}[{partition}] at offsets {start}..{end}")
        unroutable = [d.offset for d in letters if not d.original_topic]
        if unroutable:
            raise ReplayError(f"offsets {unroutable} have no dlq_original_topic header")
        replayed = []
        for letter in letters:
            original = letter.original_topic
            assert original is not None
            meta = await self._producer.send_and_wait(
                original, value=letter.value, key=letter.key, headers=letter.replay_headers()
            )
            replayed.append(Replayed(letter.partition, letter.offset, original, meta.partition, meta.offset))
        DLQ_REPLAYED.labels(group).inc(len(replayed))
        return replayed

    async def _read(self, tp: TopicPartition, first: int, stop: int) -> list[ConsumerRecord]:
        """Records [first, stop) of one partition, through a short-lived group-less consumer."""
        if first >= stop:
            return []
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, client_id="fieldcollect-ops-reader"
        )
        await consumer.start()
        records: list[ConsumerRecord] = []
        try:
            consumer.assign([tp])
            consumer.seek(tp, first)
            deadline = asyncio.get_running_loop().time() + 15
            while asyncio.get_running_loop().time() < deadline:
                batch = await consumer.getmany(tp, timeout_ms=300, max_records=500)
                records.extend(r for r in batch.get(tp, []) if first <= r.offset < stop)
                if (records and records[-1].offset >= stop - 1) or await consumer.position(tp) >= stop:
                    break
        finally:
            await consumer.stop()
        return records


def offsets_consumer(bootstrap_servers: str, client_id: str) -> AIOKafkaConsumer:
    """A group-less consumer for reading offsets: small, quick fetches (records are discarded)."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        client_id=client_id,
        fetch_max_wait_ms=20,
        max_partition_fetch_bytes=64 * 1024,
    )


async def highwaters(
    consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition], timeout_s: float = 5.0
) -> dict[TopicPartition, int]:
    """The highwater of each assigned partition, as a fetch response reports it.

    seek_to_end first (ListOffsets; right on Kafka, possibly behind on the dev broker),
    then fetch until every partition has reported its high watermark. Moves the consumer's
    positions: callers seek afterwards.
    """
    await consumer.seek_to_end(*tps)
    listed = {tp: await consumer.position(tp) for tp in tps}
    deadline = time.monotonic() + timeout_s
    while any(consumer.highwater(tp) is None for tp in tps) and time.monotonic() < deadline:
        await consumer.getmany(*tps, timeout_ms=100, max_records=1)
    return {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in tps}


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
