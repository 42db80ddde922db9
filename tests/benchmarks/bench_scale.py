"""Consumer throughput of the visits service with 1, 2 and 3 instances in one group.

Run: .venv/bin/python tests/benchmarks/bench_scale.py [--events N] [--partitions P]

For each instance count: a fresh development broker (Tansu) and database, N instances of
`python -m services.visits` (API, consumers and relay, as deployed), a warm-up until every
instance owns partitions and has applied an event, then a backlog of assignments for many
accounts (assigned, cancelled, assigned, … per account, keyed by account id) produced at
once. Throughput = events / (time from the first send to the last inbox row committed);
the figure in brackets is the consumers' own rate (first to last committing transaction).
Two rounds by default, interleaved, keeping each count's best (the machine may be shared).

Each event is decoded, deduplicated through the inbox and applied in one transaction per
partition batch, so the work is CPU in the service and in PostgreSQL. On a 2-core machine
that also runs PostgreSQL and the broker, a second or third instance has little idle CPU to
use: the numbers show the ceiling of this machine, not of the design. Prints figures, then
one JSON line: {"instances_1_per_s": a, "instances_2_per_s": b, "instances_3_per_s": c}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# Runs as a script from any directory, whether or not the project is installed in the venv.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy import devstack
from shared.events.topics import ASSIGNMENTS
from tests.scale.cluster import AssignmentStream, Environment, VisitsInstances, start_producer


async def measure(
    admin_dsn: str, instances_count: int, events: int, partitions: int, work_dir: Path
) -> tuple[float, float]:
    env = await Environment.create(admin_dsn, work_dir, partitions)
    instances = VisitsInstances(env, work_dir, {"LOG_LEVEL": "WARNING"})
    producer = None
    try:
        names = instances.start(instances_count)
        await instances.wait_ready()
        producer = await start_producer(env.broker.bootstrap)
        warmup = AssignmentStream.of(partitions, f"WARM{instances_count}")
        warmed = 0
        deadline = time.monotonic() + 120
        while True:
            for index, event in enumerate(warmup.step(0 if warmed % 2 == 0 else 1)):
                await producer.send_and_wait(
                    ASSIGNMENTS,
                    value=event.value(),
                    key=event.key,
                    headers=event.headers(),
                    partition=index % partitions,
                )
            warmed += 1
            counts = [await instances.consumed(name) for name in names]
            if all(c["processed"] > 0 for c in counts):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"not every instance got partitions: {counts}")
            await asyncio.sleep(1.0)
        baseline = warmup.total
        while await env.inbox_count() < baseline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # let the group settle after the last join

        accounts = max(events // 10, 1)
        stream = AssignmentStream.of(accounts, f"BENCH{instances_count}")
        in_order = []  # step by step, as the planner would publish: per-account order is the send order
        step = 0
        while stream.total < events:
            in_order.extend(stream.step(step))
            step += 1
        records = [(e.value(), e.key, e.headers()) for e in in_order]
        started = time.perf_counter()
        pending = [await producer.send(ASSIGNMENTS, value=v, key=k, headers=h) for v, k, h in records]
        await asyncio.gather(*pending)
        target = baseline + stream.total
        while await env.inbox_count() < target:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        async with env.pool.acquire() as conn:
            span = await conn.fetchval(
                "SELECT extract(epoch FROM max(processed_at) - min(processed_at)) FROM ("
                " SELECT processed_at FROM inbox ORDER BY processed_at DESC LIMIT $1) AS measured",
                stream.total,
            )
        return stream.total / elapsed, stream.total / max(float(span), 1e-6)
    finally:
        if producer is not None:
            await producer.stop()
        await asyncio.to_thread(instances.stop)
        await env.close()


async def run(args: argparse.Namespace, admin_dsn: str) -> dict[str, float]:
    print(
        f"visits consumer group throughput: {args.events} events, {args.partitions} partitions,"
        f" {os.cpu_count()} CPUs (shared with PostgreSQL and the broker)"
    )
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        # Rounds interleave the instance counts, so a burst of load from elsewhere on a shared
        # machine hits every count alike; each count keeps its best round.
        for round_number in range(1, args.rounds + 1):
            for count in (1, 2, 3):
                work_dir = Path(tmp) / f"r{round_number}n{count}"
                work_dir.mkdir()
                end_to_end, consumers = await measure(
                    admin_dsn, count, args.events, args.partitions, work_dir
                )
                key = f"instances_{count}_per_s"
                results[key] = max(results.get(key, 0.0), round(end_to_end, 1))
                print(
                    f"  round {round_number}, {count} instance(s): {end_to_end:8.0f} events/s end to end"
                    f"  ({consumers:.0f}/s consuming)",
                    flush=True,
                )
    print(
        "  best: " + ", ".join(f"{n} instance(s) {results[f'instances_{n}_per_s']:.0f}/s" for n in (1, 2, 3))
    )
    base = results["instances_1_per_s"]
    print(
        "  speed-up: "
        + ", ".join(f"{n}× instances {results[f'instances_{n}_per_s'] / base:.2f}" for n in (2, 3))
    )
    return results


def main() -> int:
    parse = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parse.add_argument("--events", type=int, default=20_000)
    parse.add_argument("--partitions", type=int, default=6)
    parse.add_argument("--rounds", type=int, default=2, help="measure each count this often, keep the best")
    args = parse.parse_args()
    admin_dsn = devstack.admin_dsn()  # before the event loop: it may start an embedded server
    results = asyncio.run(run(args, admin_dsn))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
