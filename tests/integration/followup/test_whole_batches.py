"""The consumer runner's opt-in whole-batch mode (follow-up's consumers use it): the same
contract as event by event — each event applied once, a poison event dead-lettered with no
effect and no inbox row, the rest of its batch applied — with one savepoint per batch."""

import asyncio
import contextlib

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from shared.consumer import ConsumerRunner, PermanentError
from shared.events import Envelope
from shared.events import payloads as p
from shared.events.topics import dead_letter_topic
from shared.kafka import ensure_topics
from tests.conftest import eventually

pytestmark = pytest.mark.integration


def revisit(reason: str, account: str = "ACC-W") -> Envelope:
    return Envelope(data=p.RevisitRequested(account_id=account, reason=reason), source="/test")


async def consume(
    schema_pool, bootstrap: str, topic: str, group: str, handler, events: list[Envelope], batch_scope=None
) -> ConsumerRunner:
    """Publish `events` together (so the runner sees them in one poll), then run a whole-batch
    runner of `group` until it has accounted for every one of them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50)
    await producer.start()
    try:
        futures = [await producer.send(topic, e.value(), key=e.key, headers=e.headers()) for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    runner = ConsumerRunner(
        group_id=group,
        topics=[topic],
        handlers={"revisit.requested": handler},
        pool=schema_pool.pool,
        bootstrap_servers=bootstrap,
        whole_batches=True,
        batch_scope=batch_scope,
    )
    await runner.start()
    task = asyncio.create_task(runner.run())
    try:

        async def done() -> bool:
            stats = runner.stats
            return stats.processed + stats.duplicates + stats.dead_lettered >= len(events)

        await eventually(done)
    finally:
        runner.stop()
        await task
    return runner


async def test_a_whole_batch_applies_each_event_once_and_dead_letters_only_the_poison(
    schema_pool, kafka_bootstrap, uid
) -> None:
    topic, group = f"test.whole.{uid}", f"test-whole-{uid}"
    await ensure_topics(kafka_bootstrap, [topic, dead_letter_topic(group)], 1)
    async with schema_pool.pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (event_id uuid, reason text, seq serial)")

    async def record(conn, event: Envelope) -> None:
        await conn.execute(
            "INSERT INTO effects (event_id, reason) VALUES ($1, $2)", event.id, event.data.reason
        )
        if event.data.reason == "poison":
            raise PermanentError("reason: poison is not applicable")

    first, poison = revisit("first"), revisit("poison")
    events = [first, first, poison, revisit("after"), first]
    runner = await consume(schema_pool, kafka_bootstrap, topic, group, record, events)
    async with schema_pool.pool.acquire() as conn:
        effects = [r["reason"] for r in await conn.fetch("SELECT reason FROM effects ORDER BY seq")]
        inbox = {
            r["event_id"] for r in await conn.fetch("SELECT event_id FROM inbox WHERE consumer = $1", group)
        }
        dead = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", dead_letter_topic(group))
    assert effects == ["first", "after"]
    assert inbox == {first.id, events[3].id} and poison.id not in inbox
    assert dead == 1
    assert (runner.stats.processed, runner.stats.duplicates, runner.stats.dead_lettered) == (2, 2, 1)


async def test_a_batch_scope_wraps_the_batch_and_is_dropped_with_it_when_an_event_fails(
    schema_pool, kafka_bootstrap, uid
) -> None:
    """The opt-in batch scope (follow-up's outcome read-ahead) opens around a whole batch in its
    transaction; what it staged is written at its end, or rolled back with the batch, which is
    then applied event by event without a scope."""
    topic, group = f"test.scope.{uid}", f"test-scope-{uid}"
    await ensure_topics(kafka_bootstrap, [topic, dead_letter_topic(group)], 1)
    async with schema_pool.pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (reason text, how text, seq serial)")
    scopes: list[list[str]] = []
    staged: list[str] | None = None

    @contextlib.asynccontextmanager
    async def scope(conn, events):
        nonlocal staged
        scopes.append([e.data.reason for e in events])
        staged = []
        try:
            yield
            await conn.executemany(
                "INSERT INTO effects (reason, how) VALUES ($1, 'staged')", [(r,) for r in staged]
            )
        finally:
            staged = None

    async def record(conn, event: Envelope) -> None:
        if event.data.reason == "poison":
            raise PermanentError("reason: poison is not applicable")
        if staged is not None:
            staged.append(event.data.reason)
        else:
            await conn.execute("INSERT INTO effects (reason, how) VALUES ($1, 'alone')", event.data.reason)

    async def run(events: list[Envelope]) -> None:
        await consume(schema_pool, kafka_bootstrap, topic, group, record, events, scope)

    await run([revisit("a"), revisit("b")])
    await run([revisit("c"), revisit("poison"), revisit("d")])
    async with schema_pool.pool.acquire() as conn:
        effects = [
            (r["reason"], r["how"]) for r in await conn.fetch("SELECT reason, how FROM effects ORDER BY seq")
        ]
    assert effects == [("a", "staged"), ("b", "staged"), ("c", "alone"), ("d", "alone")]
    assert scopes[0] == ["a", "b"] and ["c", "poison", "d"] in scopes


async def test_a_poll_of_several_partitions_is_one_transaction_and_a_poison_falls_back_per_partition(
    schema_pool, kafka_bootstrap, uid
) -> None:
    """Whole batches of one topic: the partitions of one poll are applied in one transaction
    (one WAL flush, one offset commit); a poison event sends that poll down the per-partition
    path, which dead-letters only the poison and applies the rest once."""
    topic, group = f"test.poll.{uid}", f"test-poll-{uid}"
    await ensure_topics(kafka_bootstrap, [topic, dead_letter_topic(group)], 3)
    async with schema_pool.pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (reason text, partition_key text, xid xid8, seq serial)")

    async def record(conn, event: Envelope) -> None:
        if event.data.reason == "poison":
            raise PermanentError("reason: poison is not applicable")
        await conn.execute(
            "INSERT INTO effects (reason, partition_key, xid) VALUES ($1, $2, pg_current_xact_id())",
            event.data.reason,
            event.data.account_id,
        )

    accounts = [f"ACC-P{i}" for i in range(12)]  # keys spread over the three partitions

    async def run(events: list[Envelope]) -> ConsumerRunner:
        return await consume(schema_pool, kafka_bootstrap, topic, group, record, events)

    clean = [revisit("clean", a) for a in accounts]
    await run(clean)
    async with schema_pool.pool.acquire() as conn:
        rows = await conn.fetch("SELECT partition_key, xid FROM effects WHERE reason = 'clean'")
    assert len(rows) == len(accounts)
    partitions_of = {
        xid: {record_partition(r["partition_key"], 3) for r in rows if r["xid"] == xid}
        for xid in {r["xid"] for r in rows}
    }
    assert max(len(parts) for parts in partitions_of.values()) > 1, partitions_of

    mixed = [revisit("poison" if i == 5 else "after", a) for i, a in enumerate(accounts)]
    runner = await run(mixed)
    async with schema_pool.pool.acquire() as conn:
        after = await conn.fetchval("SELECT count(*) FROM effects WHERE reason = 'after'")
        dead = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", dead_letter_topic(group))
    assert after == len(accounts) - 1 and dead == 1
    assert (runner.stats.processed, runner.stats.dead_lettered) == (len(accounts) - 1, 1)


def record_partition(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
