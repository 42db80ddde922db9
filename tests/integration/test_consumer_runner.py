"""The consumer runner against the real broker and PostgreSQL: dedupe, DLQ, retries."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from shared.consumer import ConsumerRunner, PermanentError
from shared.events import Envelope
from shared.events import payloads as p
from shared.events.topics import dead_letter_topic
from shared.kafka import ensure_topics
from shared.outbox import OutboxRelay
from tests.conftest import eventually, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def harness(schema_pool, kafka_bootstrap, uid):
    """A topic and group of its own, an effects table, a relay (for dead letters)."""
    topic, group = f"test.runner.{uid}", f"test-group-{uid}"
    await ensure_topics(kafka_bootstrap, [topic, dead_letter_topic(group)], 1)
    async with schema_pool.pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (event_id uuid, reason text, seq serial)")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    relay = OutboxRelay(schema_pool.pool, schema_pool.schema, producer, safety_poll_s=1)
    relay_task = asyncio.create_task(relay.run())
    h = Harness(schema_pool.pool, kafka_bootstrap, topic, group, producer)
    yield h
    for runner, task in h.running:
        runner.stop()
        await task
    relay.stop()
    await relay_task
    await producer.stop()


class Harness:
    def __init__(self, pool, bootstrap, topic, group, producer) -> None:
        self.pool, self.bootstrap, self.topic, self.group, self.producer = (
            pool,
            bootstrap,
            topic,
            group,
            producer,
        )
        self.running = []
        self.failures_left = 0

    async def record(self, conn, event: Envelope) -> None:
        if event.data.reason == "poison":
            raise PermanentError("reason: poison is not applicable")
        if self.failures_left > 0:
            self.failures_left -= 1
            raise ConnectionResetError("database went away")
        await conn.execute(
            "INSERT INTO effects (event_id, reason) VALUES ($1, $2)", event.id, event.data.reason
        )

    async def start(self) -> ConsumerRunner:
        runner = ConsumerRunner(
            group_id=self.group,
            topics=[self.topic],
            handlers={"revisit.requested": self.record},
            pool=self.pool,
            bootstrap_servers=self.bootstrap,
            retry_attempts=5,
        )
        await runner.start()
        self.running.append((runner, asyncio.create_task(runner.run())))
        await runner.wait_for_assignment()
        return runner

    async def send(self, event: Envelope, value: bytes | None = None, headers=None) -> None:
        await self.producer.send_and_wait(
            self.topic,
            value=value if value is not None else event.value(),
            key=event.key,
            headers=headers if headers is not None else event.headers(),
        )

    async def effects(self) -> list[str]:
        async with self.pool.acquire() as conn:
            return [r["reason"] for r in await conn.fetch("SELECT reason FROM effects ORDER BY seq")]

    async def committed(self) -> int | None:
        runner = self.running[0][0]
        return await runner.consumer.committed(TopicPartition(self.topic, 0))


def _event(reason: str) -> Envelope:
    return Envelope(data=p.RevisitRequested(account_id="ACC-1", reason=reason), source="/test")


async def test_the_same_event_delivered_twice_has_one_effect(harness) -> None:
    await harness.start()
    first = _event("once")
    await harness.send(first)
    await harness.send(first)
    await harness.send(_event("after"))
    assert await eventually(lambda: _has(harness, ["once", "after"]))
    await asyncio.sleep(1)
    assert await harness.effects() == ["once", "after"]


async def test_poison_messages_go_to_the_dlq_and_the_partition_keeps_flowing(harness) -> None:
    await harness.start()
    garbage_headers = [*_event("x").headers()]
    await harness.send(_event("x"), value=b"\xff not json", headers=garbage_headers)
    await harness.send(_event("poison"))
    await harness.send(_event("good"))
    assert await eventually(lambda: _has(harness, ["good"]))
    dead = await read_topic(harness.bootstrap, dead_letter_topic(harness.group), lambda r: len(r) >= 2)
    assert dead[0].value == b"\xff not json", "the original bytes, intact"
    headers = [dict(d.headers) for d in dead]
    assert headers[0]["dlq_error_class"] == b"EventDecodeError"
    assert headers[0]["dlq_original_topic"] == harness.topic.encode()
    assert headers[0]["ce_type"] == b"revisit.requested", "original headers kept"
    assert headers[1]["dlq_error_class"] == b"PermanentError"
    assert b"poison" in headers[1]["dlq_error_reason"]
    assert await eventually(lambda: _committed_at_least(harness, 3))


async def test_transient_failures_are_retried_and_applied_once(harness) -> None:
    harness.failures_left = 2
    await harness.start()
    await harness.send(_event("flaky"))
    assert await eventually(lambda: _has(harness, ["flaky"]))
    assert await harness.effects() == ["flaky"]


async def test_offsets_are_committed_only_after_the_effect(harness) -> None:
    runner = await harness.start()
    await harness.send(_event("a"))
    assert await eventually(lambda: _has(harness, ["a"]))
    assert await eventually(lambda: _committed_at_least(harness, 1))
    assert runner.stats.processed == 1


async def test_a_new_member_resumes_after_the_committed_offset(harness) -> None:
    runner = await harness.start()
    await harness.send(_event("before"))
    assert await eventually(lambda: _has(harness, ["before"]))
    assert await eventually(lambda: _committed_at_least(harness, 1))
    runner.stop()
    await harness.running.pop()[1]
    await harness.send(_event("while-away"))
    await harness.start()
    assert await eventually(lambda: _has(harness, ["before", "while-away"]), timeout_s=60)
    assert await harness.effects() == ["before", "while-away"]


async def test_a_member_stopped_right_after_a_batch_leaves_its_offset_committed(harness) -> None:
    """Offsets go to the broker in the background, overlapping the next batch: none is lost
    when the member leaves right after a batch."""
    runner = await harness.start()
    await harness.send(_event("just-applied"))
    assert await eventually(lambda: _has(harness, ["just-applied"]), interval_s=0.01)
    runner.stop()
    await harness.running.pop()[1]
    await harness.send(_event("next"))
    successor = await harness.start()
    assert await eventually(lambda: _has(harness, ["just-applied", "next"]), timeout_s=60)
    assert (successor.stats.processed, successor.stats.duplicates) == (1, 0), "nothing re-read"


async def _has(harness, expected) -> bool:
    return await harness.effects() == expected


async def _committed_at_least(harness, offset: int) -> bool:
    committed = await harness.committed()
    return committed is not None and committed >= offset


def test_event_helper_makes_distinct_ids() -> None:
    assert _event("a").id != _event("a").id
    assert isinstance(_event("a").id, uuid.UUID)
