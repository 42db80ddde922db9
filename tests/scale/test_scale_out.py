"""Horizontal scaling, proven on real processes: three `python -m services.visits` in one
consumer group on the development broker, a stream of assignments for many accounts, one
instance SIGKILLed mid-stream. Every event is applied once in effect and every account's
events in order, across the takeover of the dead member's partitions."""

import asyncio
import time
import uuid
from collections import defaultdict

import pytest

from tests.conftest import eventually
from tests.scale.cluster import AssignmentStream, Environment, VisitsInstances, produce, start_producer

pytestmark = [pytest.mark.integration, pytest.mark.multi_member]

PARTITIONS = 6  # two per instance, so the victim surely owns some
ACCOUNTS = 120
STEP_INTERVAL_S = 0.4  # one step = one event for nearly every account
MIN_STEPS = 8
STEPS_AFTER_KILL = 10  # the stream goes on while the dead member still holds its partitions
TAKEOVER_TIMEOUT_S = 120  # Tansu hands partitions over ~16 s after a member vanishes


async def test_three_instances_apply_every_event_once_and_in_order_when_one_is_killed(
    admin_dsn, tmp_path
) -> None:
    env = await Environment.create(admin_dsn, tmp_path, PARTITIONS)
    # Small batches: the kill lands between many commits, not after one big one.
    instances = VisitsInstances(env, tmp_path, {"CONSUMER_BATCH_SIZE": "50"})
    producer = None
    producing: asyncio.Task[int] | None = None
    try:
        names = instances.start(3)
        await instances.wait_ready()
        producer = await start_producer(env.broker.bootstrap)
        stream = AssignmentStream.of(ACCOUNTS, f"SCALE{uuid.uuid4().hex[:6].upper()}")
        killed = asyncio.Event()

        async def keep_producing() -> int:
            step = after_kill = 0
            while step < MIN_STEPS or after_kill < STEPS_AFTER_KILL:
                await produce(producer, stream.step(step))
                step += 1
                after_kill += killed.is_set()
                await asyncio.sleep(STEP_INTERVAL_S)
            return step

        producing = asyncio.create_task(keep_producing())

        async def every_instance_applies_events() -> list | None:
            counts = [await instances.consumed(name) for name in names]
            return counts if all(c["processed"] > 0 for c in counts) else None

        before_kill = await eventually(every_instance_applies_events, timeout_s=120, interval_s=0.5)
        victim, survivors = names[1], [names[0], names[2]]
        instances.kill(victim)
        async with env.pool.acquire() as conn:
            killed_at = await conn.fetchval("SELECT clock_timestamp()")
        applied_at_kill = await env.inbox_count()
        killed.set()
        killed_wall = time.monotonic()
        steps = await asyncio.wait_for(producing, timeout=60)
        assert applied_at_kill < stream.total, "the kill must land mid-stream"

        async def all_applied() -> bool:
            return await env.inbox_count() >= stream.total

        await eventually(all_applied, timeout_s=TAKEOVER_TIMEOUT_S, interval_s=0.5)
        caught_up_s = time.monotonic() - killed_wall
        await asyncio.sleep(1.0)  # a late redelivery would have to show up now

        rows = await env.inbox()
        after = {name: await instances.consumed(name) for name in survivors}
        print(
            f"\nscale-out: {stream.total} events, {ACCOUNTS} accounts, {steps} steps;"
            f" victim had applied {before_kill[1]['processed']} before SIGKILL;"
            f" {applied_at_kill} applied at the kill; all applied {caught_up_s:.1f} s after it;"
            f" survivors' redeliveries deduplicated: {sum(c['duplicate'] for c in after.values())}"
        )

        # Once in effect: exactly one inbox row per produced event, none missing, none extra.
        produced = {e.id: account for account, events in stream.events.items() for e in events}
        assert len(rows) == len(produced) == stream.total
        assert {r["event_id"] for r in rows} == set(produced)
        assert all(c["dead_lettered"] == 0 for c in after.values())

        # Final state per account = what its last events say, applied in order.
        assert await env.visit_statuses() == stream.expected_statuses()

        # Per account: one partition, offsets in produced order, applied in offset order.
        by_account = defaultdict(list)
        for row in rows:
            by_account[produced[row["event_id"]]].append(row)
        for account, events in stream.events.items():
            applied = sorted(by_account[account], key=lambda r: r["offset"])
            assert len({r["partition"] for r in applied}) == 1, account
            assert [r["event_id"] for r in applied] == [e.id for e in events], account
            times = [r["processed_at"] for r in applied]
            assert times == sorted(times), f"{account}: applied out of offset order"

        # Every partition, the victim's included, was consumed after the kill.
        consumed_after_kill = {r["partition"] for r in rows if r["processed_at"] > killed_at}
        assert consumed_after_kill == set(range(PARTITIONS))
    finally:
        if producing is not None and not producing.done():
            producing.cancel()
        if producer is not None:
            await producer.stop()
        await asyncio.to_thread(instances.stop)
        await env.close()
