"""The outbox relay against the real PostgreSQL and broker."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from deploy import devstack
from shared.events import Envelope, decode
from shared.events import payloads as p
from shared.kafka import ensure_topics
from shared.outbox import BUNDLE, OutboxRelay, backlog, enqueue
from tests.conftest import eventually, read_topic
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration


def _revisit(account: str, n: int) -> Envelope:
    return Envelope(data=p.RevisitRequested(account_id=account, reason=f"r{n}"), source="/test")


async def _producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    return producer


async def test_committed_events_are_published_in_order_and_rolled_back_ones_never(
    schema_pool, kafka_bootstrap, uid
) -> None:
    account = f"ACC-{uid}"
    producer = await _producer(kafka_bootstrap)
    relay = OutboxRelay(schema_pool.pool, schema_pool.schema, producer, batch_size=3, safety_poll_s=30)
    task = asyncio.create_task(relay.run())
    try:
        async with schema_pool.pool.acquire() as conn:
            async with conn.transaction():
                await enqueue(conn, *[_revisit(account, n) for n in range(7)])
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await enqueue(conn, _revisit(account, 99))
                    raise RuntimeError("rolled back")
        mine = lambda recs: [r for r in recs if r.key == account.encode()]
        records = await read_topic(kafka_bootstrap, "collections.followups.v1", lambda r: len(mine(r)) >= 7)
        reasons = [decode(r.value, r.headers).data.reason for r in mine(records)]
        assert reasons == [f"r{n}" for n in range(7)]

        async def drained() -> bool:  # rows go once the broker acked; a reader may see records first
            async with schema_pool.pool.acquire() as conn:
                return await backlog(conn) == 0

        assert await eventually(drained)
    finally:
        relay.stop()
        await task
        await producer.stop()


async def test_a_row_written_while_the_broker_is_down_is_published_once_it_is_back(
    schema_pool, tmp_path
) -> None:
    proxy = TcpProxy(devstack.free_port(), devstack.free_port())
    broker = devstack.start_dev_broker(proxy.target_port, tmp_path, advertised_port=proxy.listen_port)
    await proxy.start()
    topic = "collections.followups.v1"
    await ensure_topics(broker.bootstrap, [topic], 1)
    producer = await _producer(broker.bootstrap)
    relay = OutboxRelay(schema_pool.pool, schema_pool.schema, producer, safety_poll_s=1)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _true(relay.is_leader))
        await proxy.cut()
        event = _revisit("ACC-DOWN", 1)
        async with schema_pool.pool.acquire() as conn, conn.transaction():
            await enqueue(conn, event)
        await asyncio.sleep(3)
        async with schema_pool.pool.acquire() as conn:
            assert await backlog(conn) == 1, "nothing is lost while the broker is away"
        await proxy.start()

        async def drained() -> bool:
            async with schema_pool.pool.acquire() as conn:
                return await backlog(conn) == 0

        await eventually(drained, timeout_s=60)
        records = await read_topic(broker.bootstrap, topic, lambda r: len(r) >= 1)
        assert [decode(r.value, r.headers).id for r in records] == [event.id]
    finally:
        relay.stop()
        await task
        await producer.stop()
        await proxy.cut()
        broker.stop()


async def test_only_one_relay_publishes_a_schema(schema_pool, kafka_bootstrap) -> None:
    producer = await _producer(kafka_bootstrap)
    relays = [
        OutboxRelay(schema_pool.pool, schema_pool.schema, producer, safety_poll_s=0.5) for _ in range(2)
    ]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await eventually(lambda: _true(any(r.is_leader for r in relays)))
        await asyncio.sleep(1.5)
        assert sum(r.is_leader for r in relays) == 1
    finally:
        for r in relays:
            r.stop()
        await asyncio.gather(*tasks)
        await producer.stop()


async def _true(value: bool) -> bool:
    return value


def test_envelope_ids_are_unique() -> None:
    assert len({_revisit("a", 1).id for _ in range(100)}) == 100
    assert isinstance(_revisit("a", 1).id, uuid.UUID)


async def test_a_bundle_row_publishes_its_events_in_its_place_in_order(
    schema_pool, kafka_bootstrap, uid
) -> None:
    """Bulk imports stage many events as one row (shared/outbox.py): same records, same order."""
    account, other = f"BUN-{uid}", f"BUN2-{uid}"
    before, after = _revisit(account, 0), _revisit(account, 9)
    bundled = [_revisit(account if n % 2 else other, n) for n in range(1, 6)]
    keys = [BUNDLE, "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject"]
    values = [str(len(bundled)).encode(), b"1.0", b"\x001", b"/test", b"\x002", b"\x000"]
    lines = b"".join(
        b"\t".join([e.key, str(e.id).encode(), e.type.encode(), e.value()]) + b"\n" for e in bundled
    )
    async with schema_pool.pool.acquire() as conn, conn.transaction():
        await enqueue(conn, before)
        await conn.execute(
            "INSERT INTO outbox (topic, key, value, header_keys, header_values) VALUES ($1, NULL, $2, $3, $4)",
            before.topic,
            lines,
            keys,
            values,
        )
        await enqueue(conn, after)
    producer = await _producer(kafka_bootstrap)
    # A budget of 3 events: the bundle (5) goes alone, the rows around it in batches of their own.
    relay = OutboxRelay(schema_pool.pool, schema_pool.schema, producer, batch_size=3, safety_poll_s=30)
    task = asyncio.create_task(relay.run())
    try:
        wanted = {account.encode(), other.encode()}
        records = await read_topic(
            kafka_bootstrap,
            before.topic,
            lambda recs: len([r for r in recs if r.key in wanted]) >= 7,
        )
        mine = [decode(r.value, r.headers) for r in records if r.key in wanted]
        assert [e.id for e in mine if e.subject == account] == [
            e.id for e in (before, *bundled, after) if e.subject == account
        ]
        assert [e.data.reason for e in mine if e.subject == other] == ["r2", "r4"]
        assert await eventually(lambda: _true(relay.published == 7)), "counted once acknowledged"
    finally:
        relay.stop()
        await task
        await producer.stop()
