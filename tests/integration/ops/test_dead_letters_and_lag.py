"""The broker view against the real broker: lag from explicit partitions, and a dead letter
that is listed, inspected, replayed to its original topic and then applied once."""

import asyncio
import logging

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from services.ops.broker import BrokerView, ReplayError
from shared.consumer import ConsumerRunner, PermanentError
from shared.events import Envelope
from shared.events import payloads as p
from shared.events.topics import dead_letter_topic
from shared.kafka import ensure_topics
from shared.logging import JsonFormatter, span_log
from shared.metrics import sample_value
from shared.outbox import OutboxRelay
from tests.conftest import eventually, read_topic
from tests.integration.ops.conftest import commit, produce

pytestmark = pytest.mark.integration


@pytest.fixture
async def broker_view(kafka_bootstrap):
    view = BrokerView(kafka_bootstrap)
    await view.start()
    yield view
    await view.stop()


async def test_lag_is_highwater_minus_the_committed_offset_per_partition(
    broker_view, kafka_bootstrap, uid
) -> None:
    topic, group = f"test.lag.{uid}", f"test-lag-{uid}"
    await ensure_topics(kafka_bootstrap, [topic], 2)
    await produce(kafka_bootstrap, topic, [(b"k", f"v{n}".encode(), []) for n in range(7)])
    await commit(kafka_bootstrap, group, TopicPartition(topic, 0), 0)

    (lag,) = await broker_view.lag([group], topics=[topic])

    by_partition = {p.partition: p for p in lag.partitions}
    written = sum(p.highwater for p in lag.partitions)
    assert written == 7, "the highwater a fetch reports, not a stale ListOffsets answer"
    assert by_partition[0].committed == 0 and by_partition[0].lag == by_partition[0].highwater
    assert by_partition[1].committed is None, "a partition without a commit counts from its start"
    assert lag.total == 7

    await commit(kafka_bootstrap, group, TopicPartition(topic, 0), by_partition[0].highwater)
    await commit(kafka_bootstrap, group, TopicPartition(topic, 1), by_partition[1].highwater)
    (caught_up,) = await broker_view.lag([group], topics=[topic])
    assert caught_up.total == 0


async def test_a_group_that_never_committed_on_a_topic_does_not_consume_it(
    broker_view, kafka_bootstrap, uid
) -> None:
    topic = f"test.lag.none.{uid}"
    await ensure_topics(kafka_bootstrap, [topic], 1)
    (lag,) = await broker_view.lag([f"test-nobody-{uid}"], topics=[topic])
    assert lag.partitions == ()


class Flaky:
    """A handler that refuses events while `broken`, like a bug fixed by the next deploy."""

    def __init__(self) -> None:
        self.broken = True
        self.applied: list[str] = []

    async def __call__(self, conn, event: Envelope) -> None:
        if self.broken:
            raise PermanentError("reason: not supported yet")
        self.applied.append(str(event.id))


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("test"))
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


async def test_a_dead_letter_is_inspected_replayed_and_applied_once(
    broker_view, schema_pool, kafka_bootstrap, uid
) -> None:
    topic, group = f"test.dlq.{uid}", f"test-dlq-{uid}"
    await ensure_topics(kafka_bootstrap, [topic, dead_letter_topic(group)], 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    relay = OutboxRelay(schema_pool.pool, schema_pool.schema, producer, safety_poll_s=1)
    handler = Flaky()
    runner = ConsumerRunner(
        group_id=group,
        topics=[topic],
        handlers={"revisit.requested": handler},
        pool=schema_pool.pool,
        bootstrap_servers=kafka_bootstrap,
    )
    lines = Lines()
    logging.getLogger().addHandler(lines)
    span_log.setLevel(logging.INFO)
    tasks = [asyncio.create_task(relay.run())]
    try:
        await runner.start()
        tasks.append(asyncio.create_task(runner.run()))
        await runner.wait_for_assignment()
        event = Envelope(data=p.RevisitRequested(account_id=f"ACC-{uid}", reason="callback"), source="/test")
        await producer.send_and_wait(topic, event.value(), key=event.key, headers=event.headers())

        letters = await eventually(lambda: broker_view.dead_letters(group))
        (letter,) = letters
        summary = letter.summary()
        assert summary["event_id"] == str(event.id) and summary["error_class"] == "PermanentError"
        assert summary["original_topic"] == topic and summary["account"] == f"ACC-{uid}"
        assert letter.inspect()["payload"]["reason"] == "callback"
        assert (
            sample_value(
                "fieldcollect_events_dead_lettered_total",
                {"group": group, "topic": topic, "type": "revisit.requested", "error": "PermanentError"},
            )
            == 1
        )

        handler.broken = False
        (replayed,) = await broker_view.replay(group, None, letter.offset, letter.offset)
        assert (replayed.topic, replayed.dlq_offset) == (topic, letter.offset)
        assert await eventually(lambda: _true(handler.applied == [str(event.id)]))

        records = await read_topic(kafka_bootstrap, topic, lambda r: len(r) >= 2)
        assert records[1].value == records[0].value and records[1].key == records[0].key
        assert list(records[1].headers) == list(records[0].headers), "original headers, no dlq_* ones"

        await broker_view.replay(group, None, letter.offset, letter.offset)
        await eventually(lambda: _true(runner.stats.duplicates == 1))
        assert handler.applied == [str(event.id)], "the inbox skips what was applied"
        assert sample_value("fieldcollect_dlq_replayed_total", {"group": group}) == 2
        processed = {"group": group, "topic": topic, "type": "revisit.requested", "outcome": "processed"}
        assert sample_value("fieldcollect_events_consumed_total", processed) == 1
        assert (
            sample_value(
                "fieldcollect_events_produced_total",
                {
                    "schema": schema_pool.schema,
                    "topic": dead_letter_topic(group),
                    "type": "revisit.requested",
                },
            )
            == 1
        )

        trace_id = event.traceparent.split("-")[1]
        spans = [line for line in lines.lines if line.get("span") == "consume revisit.requested"]
        assert [s["fieldcollect.outcome"] for s in spans] == ["dead_lettered", "processed", "duplicate"]
        assert all(s["trace_id"] == trace_id and s["event_id"] == str(event.id) for s in spans)
        assert all(s["parent_span_id"] == event.traceparent.split("-")[2] for s in spans)
    finally:
        logging.getLogger().removeHandler(lines)
        runner.stop()
        relay.stop()
        await asyncio.gather(*tasks)
        await producer.stop()


async def test_replays_that_cannot_be_done_publish_nothing(broker_view, kafka_bootstrap, uid) -> None:
    group = f"test-noreplay-{uid}"
    with pytest.raises(ReplayError, match="no dead-letter topic"):
        await broker_view.replay(group, None, 0, 0)
    await ensure_topics(kafka_bootstrap, [dead_letter_topic(group)], 2)
    with pytest.raises(ReplayError, match="has 2 partitions"):
        await broker_view.replay(group, None, 0, 0)
    with pytest.raises(ReplayError, match="no dead letters"):
        await broker_view.replay(group, 0, 0, 5)
    with pytest.raises(ReplayError, match="before"):
        await broker_view.replay(group, 0, 5, 0)
    await produce(kafka_bootstrap, dead_letter_topic(group), [(b"k", b"{}", [("ce_type", b"x")])])
    (dlq,) = [t for t in await broker_view.dlq_topics() if t.group == group]
    (partition,) = [p.partition for p in dlq.partitions if p.depth]
    with pytest.raises(ReplayError, match="no dlq_original_topic"):
        await broker_view.replay(group, partition, 0, 0)


async def _true(value: bool) -> bool:
    return value
