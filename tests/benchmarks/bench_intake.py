"""Intake end to end: a daily file validated, diffed, committed and published to Kafka.

Run: .venv/bin/python tests/benchmarks/bench_intake.py   (ACCOUNTS=1000000 by default)

Starts its own broker (the development broker) and database, and the intake service as its
own process (its outbox relay publishes, as in production). Then:

1. generates the day-1 file: ACCOUNTS overdue accounts (a delinquency file: every row opens
   a case, the worst case for publishing), and the day-2 file: every account one day older
   (DPD + 1, so some cross a bucket) and about 5 % with a material change (payments, cures,
   new arrears, flag changes);
2. imports each file the way `python -m services.intake import-file` does, timed from the
   first byte read until the relay has drained the outbox to the broker (acks=all);
3. for comparison, in the same run: aiokafka producing as many events of the same size to
   the same broker, and a raw COPY of the same rows into PostgreSQL.

Prints figures, then one JSON line (the last line).
"""

from __future__ import annotations

import asyncio
import csv
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from deploy import devstack
from services.intake.csv_format import COLUMNS
from services.intake.file_import import import_path
from services.intake.main import SCHEMA, SERVICE_DIR
from services.intake.segmentation import load_segmentation
from shared.auth import generate_keypair
from shared.db import create_pool, migrate
from shared.events.topics import DELINQUENCY
from shared.kafka import ensure_topics

ACCOUNTS = int(os.environ.get("ACCOUNTS", "1000000"))
PARTITIONS = int(os.environ.get("KAFKA_PARTITIONS", "6"))
CHUNK_ROWS = int(os.environ.get("IMPORT_CHUNK_ROWS", "20000"))
DAY1 = date(2026, 11, 28)
SEED = 20261128

CITIES = [
    ("Shenzhen", "Guangdong", 22.54, 114.06, "518000"),
    ("Guangzhou", "Guangdong", 23.13, 113.26, "510000"),
    ("Chengdu", "Sichuan", 30.66, 104.07, "610000"),
    ("Wuhan", "Hubei", 30.59, 114.31, "430000"),
    ("Hangzhou", "Zhejiang", 30.27, 120.16, "310000"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"


# --- the files --------------------------------------------------------------------------


def _account(i: int, rng: random.Random) -> list[str]:
    city, region, lat, lon, postal = CITIES[i % len(CITIES)]
    installment = rng.randrange(300, 3000)
    dpd = rng.randrange(1, 400)
    overdue = min(installment * (1 + dpd // 30), 60_000) + rng.randrange(0, 100) / 100
    outstanding = overdue + rng.randrange(0, 80_000)
    name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
    return [
        f"LN{i:09d}",
        f"CU{i:09d}",
        rng.choice(("cash_loan", "pos_loan", "credit_card")),
        "CNY",
        DAY1.isoformat(),
        "active",
        f"{outstanding + rng.randrange(0, 20_000):.2f}",
        f"{outstanding:.2f}",
        f"{overdue:.2f}",
        f"{installment:.2f}",
        str(dpd),
        "",
        "",
        "",
        name,
        f"+86138{rng.randrange(10_000_000, 99_999_999)}",
        "zh-CN",
        "Asia/Shanghai",
        f"{rng.randrange(1, 999)}号 {rng.choice('东西南北')}路 {rng.randrange(1, 30)}栋",
        city,
        region,
        postal,
        "CN",
        f"{lat + rng.uniform(-0.2, 0.2):.5f}",
        f"{lon + rng.uniform(-0.2, 0.2):.5f}",
        "",
        "",
        "",
        "",
        "1" if i % 40 == 0 else "",
    ]


def _next_day(row: list[str], rng: random.Random) -> list[str]:
    """The same account a day later: DPD ticks; ~5 % change materially."""
    row = list(row)
    row[4] = (DAY1 + timedelta(days=1)).isoformat()
    row[10] = str(int(row[10]) + 1)
    roll = rng.random()
    overdue, outstanding = float(row[8]), float(row[7])
    if roll < 0.02:  # a partial payment
        paid = round(overdue * rng.uniform(0.2, 0.8), 2)
        row[8], row[7] = f"{overdue - paid:.2f}", f"{outstanding - paid:.2f}"
        row[12], row[13] = DAY1.isoformat(), f"{paid:.2f}"
    elif roll < 0.03:  # paid in full: cured
        row[7] = f"{outstanding - overdue:.2f}"
        row[8], row[10] = "0.00", "0"
        row[12], row[13] = DAY1.isoformat(), f"{overdue:.2f}"
    elif roll < 0.045:  # another instalment fell due
        installment = float(row[9])
        row[8], row[7] = f"{overdue + installment:.2f}", f"{outstanding + installment:.2f}"
    elif roll < 0.05:  # a dispute or a vulnerability flag
        row[26 if rng.random() < 0.5 else 29] = "1"
    return row


def write_files(directory: Path, accounts: int) -> tuple[Path, Path]:
    rng, rng2 = random.Random(SEED), random.Random(SEED + 1)
    day1, day2 = directory / "accounts-day1.csv", directory / "accounts-day2.csv"
    with (
        day1.open("w", newline="", encoding="utf-8") as f1,
        day2.open("w", newline="", encoding="utf-8") as f2,
    ):
        w1, w2 = csv.writer(f1, lineterminator="\n"), csv.writer(f2, lineterminator="\n")
        w1.writerow(COLUMNS)
        w2.writerow(COLUMNS)
        for i in range(accounts):
            row = _account(i, rng)
            w1.writerow(row)
            w2.writerow(_next_day(row, rng2))
    return day1, day2


# --- the intake service (its relay publishes) ---------------------------------------------


def start_service(
    database_url: str, bootstrap: str, keys_dir: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    _, public = generate_keypair(keys_dir)
    port = devstack.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "JWT_PUBLIC_KEY_FILE": str(public),
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "LOG_SPANS": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.intake"],
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=devstack.ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"intake exited; see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError("intake did not get ready")


async def wait_drained(pool: Any, timeout_s: float = 3600) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        async with pool.acquire() as conn:
            if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox)"):
                return
        if time.monotonic() > deadline:
            raise TimeoutError("the outbox did not drain")
        await asyncio.sleep(0.05)


class CpuMeter:
    """CPU seconds spent by each part during a phase: the figure the machine's load cannot skew.

    Parts: this process (the import, as the CLI runs it), the intake service (its relay), the
    PostgreSQL backends serving this database, and the broker. PostgreSQL's shared background
    processes (WAL writer, checkpointer) are not counted.
    """

    def __init__(self, pool: Any, pids: dict[str, int]) -> None:
        self._pool = pool
        self._pids = pids
        self._start: dict[int, float] = {}

    async def _parts(self) -> dict[str, list[int]]:
        async with self._pool.acquire() as conn:
            backends = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return {**{name: [pid] for name, pid in self._pids.items()}, "postgres": [r["pid"] for r in backends]}

    async def start(self) -> None:
        self._start = {pid: _cpu(pid) for pids in (await self._parts()).values() for pid in pids}

    async def stop(self) -> dict[str, float]:
        return {
            name: sum(_cpu(pid) - self._start.get(pid, 0.0) for pid in pids)
            for name, pids in (await self._parts()).items()
        }


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed_import(pool: Any, path: Path, meter: CpuMeter) -> tuple[float, dict[str, int]]:
    await meter.start()
    started = time.perf_counter()
    outcome = await import_path(pool, path, "utf-8", load_segmentation(), CHUNK_ROWS)
    imported = time.perf_counter() - started
    await wait_drained(pool)
    elapsed = time.perf_counter() - started
    cpu = await meter.stop()
    r = outcome.record
    print(
        f"  {path.name}: {r.rows_accepted} accepted, {r.rows_rejected} rejected,"
        f" {r.rows_unchanged} unchanged, {r.events_staged} events;"
        f" committed in {imported:.1f} s, published by {elapsed:.1f} s",
        flush=True,
    )
    total = sum(cpu.values())
    parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())
    print(
        f"  CPU seconds: {parts}; total {total:.1f} = {total / ACCOUNTS * 1e6:.0f} µs per account"
        f" (two idle cores would allow about {2 * ACCOUNTS / total:,.0f} accounts/s)",
        flush=True,
    )
    return elapsed, {"accepted": r.rows_accepted, "events": r.events_staged}


# --- the baselines ------------------------------------------------------------------------


async def sample_event(bootstrap: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(DELINQUENCY, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        batch = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
        record = batch[tp][0]
        return record.value, list(record.headers)
    finally:
        await consumer.stop()


async def raw_produce(
    bootstrap: str, count: int, value: bytes, headers: list[tuple[str, bytes]]
) -> tuple[float, float]:
    """Events per second: one `send` per record, and record batches (the relay's way)."""
    await ensure_topics(bootstrap, ["bench.raw-send", "bench.raw-batch"], PARTITIONS)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        started = time.perf_counter()
        for first in range(0, count, 5000):
            futures = [
                await producer.send("bench.raw-send", value=value, key=f"LN{i:09d}".encode(), headers=headers)
                for i in range(first, min(count, first + 5000))
            ]
            await asyncio.gather(*futures)
        per_send = count / (time.perf_counter() - started)
        partitions = sorted(await producer.partitions_for("bench.raw-batch"))
        partitioner = DefaultPartitioner()
        started = time.perf_counter()
        for first in range(0, count, 5000):
            builders: dict[int, list[Any]] = {}
            for i in range(first, min(count, first + 5000)):
                key = f"LN{i:09d}".encode()
                batches = builders.setdefault(
                    partitioner(key, partitions, partitions), [producer.create_batch()]
                )
                if batches[-1].append(key=key, value=value, timestamp=None, headers=headers) is None:
                    batches.append(producer.create_batch())
                    batches[-1].append(key=key, value=value, timestamp=None, headers=headers)
            futures = []
            for partition, batches in builders.items():
                for batch in batches:
                    batch.close()
                    futures.append(await producer.send_batch(batch, "bench.raw-batch", partition=partition))
            await asyncio.gather(*futures)
        per_batch = count / (time.perf_counter() - started)
    finally:
        await producer.stop()
    return per_send, per_batch


async def raw_copy(database_url: str, path: Path) -> float:
    columns = ", ".join(f"{c} text" for c in COLUMNS)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE TABLE raw_copy ({columns})")
        started = time.perf_counter()
        result = await conn.copy_to_table("raw_copy", source=path, format="csv", header=True)
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE raw_copy")
    finally:
        await conn.close()
    return int(result.split()[-1]) / elapsed


# --- the run ------------------------------------------------------------------------------


async def run(directory: Path, database_url: str, bootstrap: str, broker_pid: int) -> dict[str, Any]:
    print(f"generating {ACCOUNTS:,} accounts (day 1 and day 2)…", flush=True)
    day1, day2 = write_files(directory, ACCOUNTS)
    print(f"  {day1.stat().st_size / 1e6:.0f} MB per file", flush=True)
    pool = await create_pool(database_url, SCHEMA, 1, 4)
    async with pool.acquire() as conn:
        await migrate(conn, SCHEMA, SERVICE_DIR)
    service = start_service(database_url, bootstrap, directory / "keys", directory / "intake.log")
    meter = CpuMeter(pool, {"import": os.getpid(), "service": service.pid, "broker": broker_pid})
    try:
        gc.collect()
        print(f"first load… (load average {os.getloadavg()[0]:.1f})", flush=True)
        first_s, first = await timed_import(pool, day1, meter)
        print(f"next day… (load average {os.getloadavg()[0]:.1f})", flush=True)
        next_s, nxt = await timed_import(pool, day2, meter)
    finally:
        service.terminate()
        service.wait(60)
        await pool.close()
    events = first["events"] + nxt["events"]
    value, headers = await sample_event(bootstrap)
    print(f"raw produce: {first['events']:,} events of {len(value)} bytes (+ headers)…", flush=True)
    per_send, per_batch = await raw_produce(bootstrap, first["events"], value, headers)
    print(f"  send(): {per_send:,.0f}/s   record batches: {per_batch:,.0f}/s", flush=True)
    print("raw COPY of the day-1 rows…", flush=True)
    copy_rate = await raw_copy(database_url, day1)
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    service_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: bench (import) {self_mb:.0f} MB, intake service (relay) {service_mb:.0f} MB")
    return {
        "accounts": ACCOUNTS,
        "first_load_accounts_per_s": round(ACCOUNTS / first_s),
        "next_day_accounts_per_s": round(ACCOUNTS / next_s),
        "raw_produce_per_s": round(per_batch),
        "raw_copy_rows_per_s": round(copy_rate),
        "events_published": events,
        "peak_rss_mb": round(max(self_mb, service_mb)),
    }


def main() -> int:
    admin = devstack.admin_dsn()
    name = f"fc_bench_intake_{uuid.uuid4().hex[:6]}"
    database_url = asyncio.run(devstack.create_database(admin, name, drop_first=True))
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        directory = Path(tmp)
        broker = devstack.start_dev_broker(log_dir=directory)
        try:
            asyncio.run(ensure_topics(broker.bootstrap, [DELINQUENCY], PARTITIONS))
            assert broker.process is not None
            result = asyncio.run(run(directory, database_url, broker.bootstrap, broker.process.pid))
        finally:
            broker.stop()
            asyncio.run(devstack.drop_database(admin, name))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
