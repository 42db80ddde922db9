"""Event-to-effect latency of follow-up: visit.outcome_recorded published → SMS job created.

Run: make bench-followup   (or .venv/bin/python tests/benchmarks/bench_followup.py)
Environment: RATE (events/s, default 1000), DURATION (s, default 60), DRAIN_S (s to wait for
the SMS to go out, default 600), KAFKA_PARTITIONS (default 2), FOLLOWUP_REPLICAS (follow-up
processes, default 2: a replica per partition, as a deployment scales), LATENCY_TRACE (a path prefix:
one line per event, seconds since the first publish and ms to its effect, for follow-up and the bare
loop), and any follow-up setting. Tuned here unless set in the environment
(BENCH_TUNING below; the services' defaults are unchanged): OUTCOME_FETCH_MAX_WAIT_MS=10 (the
outcomes group only; the delinquency group keeps 500 ms and fetches twice a second when idle) — the
development broker holds a fetch for the whole max wait instead of answering when data arrives
(Apache Kafka answers at once), which alone puts ~130 ms on every event at aiokafka's default of
500 ms; LOG_SPANS=false — no log line per consumed event (spans are still made).
CONSUMER_POLL_TIMEOUT_MS / CONSUMER_BATCH_SIZE keep their defaults (200 ms, 500). Two partitions:
the development broker's delivery time grows with the partitions a fetch covers (a bare
produce-to-consume probe at 1,000/s here: p99 22 ms with one partition, ~52 with two or three,
50-120 ms with six), and one Python process per partition spreads follow-up over both cores.

What runs, all on loopback on this machine: a fresh database and a development broker; the
SMS sandbox; follow-up as its own process(es) (`python -m services.followup`, consumers on,
sender off); then, over the same records at the same rate on a topic of its own, a bare
aiokafka consumer that inserts each event's id into a table, one transaction and one offset
commit per poll like follow-up's runner (this file, `--bare`), so the figures show what
follow-up's work costs over plain consume-and-insert. The two run one after the other, so
neither takes CPU from the other's measurement.

1. Warm-up: one delinquency.opened per account (follow-up learns each customer's phone and
   zone; every account has its own phone), then a few hundred outcomes, unmeasured.
2. Measured: promise-to-pay outcomes published at RATE for DURATION (linger 5 ms, as a relay
   would batch them). A row trigger this bench adds to the job table sends each job's trigger
   id with NOTIFY, which PostgreSQL delivers at commit, so "created" means committed and
   visible to others; the same for the bare table. Latency = notified - published, per event. The customers live
   where it is daytime now, so the compliance policy allows the SMS now (the job of a refused
   contact would be created all the same, deferred).
3. Sending, not timed: two SMS sender processes (follow-up with SMS_SENDER_ENABLED only) send
   every confirmation through the sandbox at once. duplicate_sms counts messages the sandbox
   accepted beyond one per (phone, template) — every account has one promise, so any extra
   message is a duplicate a customer would have received — plus job-table duplicates.

Last line: {"events": n, "rate_per_s": r, "p50_ms": a, "p99_ms": b, "bare_p99_ms": c, "duplicate_sms": d}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from deploy import devstack  # noqa: E402
from shared.auth import generate_keypair  # noqa: E402
from shared.events import Envelope, topics  # noqa: E402
from shared.events import payloads as p  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402

RATE = int(os.environ.get("RATE", "1000"))
DURATION = float(os.environ.get("DURATION", "60"))
DRAIN_S = float(os.environ.get("DRAIN_S", "600"))
PARTITIONS = int(os.environ.get("KAFKA_PARTITIONS", "2"))
REPLICAS = int(os.environ.get("FOLLOWUP_REPLICAS", "2"))
WARMUP_OUTCOMES = 300
# LOG_SPANS=false: one JSON log line per consumed event costs follow-up more than its own
# handler does (LOG_LEVEL=WARNING does not silence the span logger); the bare loop logs nothing.
# OUTCOME_CONSUMERS=1: the runner applies all partitions of a poll in one transaction, so more
# members in one process add fetch loops (broker and client CPU), not parallelism.
BENCH_TUNING = {
    "OUTCOME_FETCH_MAX_WAIT_MS": "10",
    "OUTCOME_CONSUMERS": "1",
    "LOG_SPANS": "false",
}
BARE_GROUP = "bench.bare"
SANDBOX_KEY = "bench-sandbox-key"
Record = tuple[uuid.UUID, bytes, bytes, list[tuple[str, bytes]]]


def daytime_zone() -> str:
    """A zone where it is early afternoon now: the customers may be texted now."""
    offset = (13 - datetime.now(UTC).hour + 12) % 24 - 12
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def opened(account_id: str, phone: str, zone: str) -> Envelope:
    data = p.DelinquencyOpened(
        account_id=account_id,
        customer_id=f"C-{account_id}",
        product="cash_loan",
        currency="CNY",
        as_of=date.today(),
        principal=Decimal("12000.00"),
        outstanding=Decimal("8000.00"),
        overdue_amount=Decimal("900.00"),
        dpd=35,
        dpd_bucket="31-60",
        contact=p.ContactDetails(name="Bench Customer", phone=phone, language="zh-CN", time_zone=zone),
        address=p.Address(line1="1 Bench Rd", city="Shenzhen", country="CN"),
    )
    return Envelope(data=data, source="/bench/intake")


def promise_outcome(account_id: str, rng: random.Random) -> Envelope:
    data = p.VisitOutcomeRecorded(
        account_id=account_id,
        visit_id=uuid.uuid4(),
        agent_id=f"AG-{rng.randrange(200):03d}",
        outcome_id=uuid.uuid4(),
        recorded_at=datetime.now(UTC),
        outcome=p.PromiseToPay(
            amount=Decimal(rng.randrange(100, 5000)),
            promised_date=date.today() + timedelta(days=rng.randrange(3, 15)),
        ),
        currency="CNY",
        recording_ref="rec-bench",
    )
    return Envelope(data=data, source="/bench/visits")


def record(event: Envelope) -> Record:
    return event.id, event.key, event.value(), event.headers()


# --- processes ---------------------------------------------------------------------------


@dataclass
class Stack:
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str], **extra: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *args], env={**self.env, **extra}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes[name] = process
        return process

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_http(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url, timeout=2)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready")
            await asyncio.sleep(0.3)


async def wait_until(probe: Callable[[], Any], timeout_s: float, interval_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await probe():
            return True
        await asyncio.sleep(interval_s)
    return False


# --- the observer: when did each event's effect become visible? ---------------------------


class Observer:
    """Stamps when each published event's effect became visible to others.

    A statement trigger on the observed table (installed by this bench, not by the service)
    sends the event ids its statement inserted with NOTIFY, comma-separated (a notification per
    200 ids); PostgreSQL delivers notifications when their transaction commits, so the stamp is
    the moment the effect is committed and visible. Cheap whatever the backlog: nothing is
    polled, and a batch costs a notification, not one per row.
    """

    def __init__(self, pool: Any, channel: str) -> None:
        self._pool = pool
        self._channel = channel
        self.outstanding: set[uuid.UUID] = set()
        self.seen: dict[uuid.UUID, float] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        async with self._pool.acquire() as listener:
            await listener.add_listener(self._channel, self._on_notify)
            try:
                await stopping.wait()
            finally:
                await listener.remove_listener(self._channel, self._on_notify)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        now = time.time()
        for text in payload.split(","):
            event_id = uuid.UUID(text)
            if event_id in self.outstanding:
                self.outstanding.discard(event_id)
                self.seen[event_id] = now


JOBS_CHANNEL, BARE_CHANNEL = "bench_job_seen", "bench_bare_seen"


def notify_inserted(name: str, table: str, column: str, channel: str, where: str = "true") -> str:
    """SQL for a statement trigger on `table` that notifies `channel` of the `column` values it
    inserted (where `where`), 200 to a notification (a payload is limited to 8,000 bytes)."""
    return f"""
CREATE SCHEMA IF NOT EXISTS bench;
CREATE OR REPLACE FUNCTION bench.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', string_agg(id, ','))
    FROM (SELECT {column}::text AS id, (row_number() OVER () - 1) / 200 AS chunk
          FROM inserted WHERE {where}) ids
    GROUP BY chunk;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS {name} ON {table};
CREATE TRIGGER {name} AFTER INSERT ON {table} REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION bench.{name}();
"""


# Installed once follow-up has migrated its schema: the confirmation jobs, at commit.
OBSERVE_JOBS = notify_inserted(
    "job_seen", "followup.sms_jobs", "trigger_event_id", JOBS_CHANNEL, "action = 'sms.promise_confirmation'"
)
BARE_TOPIC = "bench.bare-outcomes"


# --- the bare consume-and-insert loop (a subprocess of its own) -----------------------------


async def bare_loop(bootstrap: str, dsn: str, poll_ms: int, batch_size: int, fetch_wait_ms: int) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE SCHEMA IF NOT EXISTS bench;"
            " CREATE TABLE IF NOT EXISTS bench.bare (seq bigserial, event_id uuid PRIMARY KEY, account_id text);"
        )
        await conn.execute(notify_inserted("bare_seen", "bench.bare", "event_id", BARE_CHANNEL))
    consumer = AIOKafkaConsumer(
        BARE_TOPIC,
        bootstrap_servers=bootstrap,
        group_id=BARE_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch_size,
        fetch_max_wait_ms=fetch_wait_ms,
    )
    await consumer.start()
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    while not consumer.assignment():  # joined: the measured events will not wait for a rebalance
        await consumer.getmany(timeout_ms=poll_ms)
    print("READY", flush=True)
    try:
        while not stopping.is_set():
            batch = await consumer.getmany(timeout_ms=poll_ms, max_records=batch_size)
            if not batch:
                continue
            rows = [(_ce_id(r.headers), r.key.decode()) for records in batch.values() for r in records]
            async with pool.acquire() as conn, conn.transaction():
                await conn.executemany(
                    "INSERT INTO bench.bare (event_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    rows,
                )
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
    finally:
        await consumer.stop()
        await pool.close()


def _ce_id(headers: Any) -> uuid.UUID:
    return uuid.UUID(next(bytes(v).decode() for k, v in headers if k == "ce_id"))


# --- the run ----------------------------------------------------------------------------------


async def publish_all(producer: AIOKafkaProducer, topic: str, records: list[Record]) -> None:
    futures = [await producer.send(topic, value=v, key=k, headers=h) for _, k, v, h in records]
    await asyncio.gather(*futures)


async def publish_paced(
    producer: AIOKafkaProducer,
    topic: str,
    records: list[Record],
    rate: int,
    published: dict[uuid.UUID, float],
    observers: tuple[Observer, ...] = (),
) -> tuple[float, list[asyncio.Future[Any]]]:
    """Publish at `rate` per second, stamping each event as it enters the producer; returns the
    seconds it took and the delivery futures (check them with `all_delivered` once stamping is done:
    a callback on each of 60,000 futures stalls the loop, and with it the stamps, ~100 ms)."""
    futures = []
    started = time.monotonic()
    for index, (event_id, key, value, headers) in enumerate(records):
        due = started + index / rate
        delay = due - time.monotonic()
        if delay > 0.002:
            await asyncio.sleep(delay)
        for observer in observers:
            observer.outstanding.add(event_id)
        published[event_id] = time.time()
        futures.append(await producer.send(topic, value=value, key=key, headers=headers))
    await producer.flush()
    return time.monotonic() - started, futures


def all_delivered(futures: list[asyncio.Future[Any]]) -> None:
    undelivered = sum(1 for f in futures if not f.done() or f.exception() is not None)
    if undelivered:
        raise RuntimeError(f"{undelivered} events were not delivered to the broker")


def cpu_seconds(pid: int, reaped_children: bool = False) -> float:
    """User + system CPU of one process so far (0 once it is gone); with `reaped_children`, plus
    that of its children that have exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped_children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> dict[int, float]:
    """CPU of every PostgreSQL process, the postmaster's counting its exited backends (asyncpg
    replaces a connection after 50,000 queries: a live-processes-only count would lose them)."""
    procs: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                procs[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    return {pid: cpu_seconds(pid, reaped_children=parent not in procs) for pid, parent in procs.items()}


@dataclass
class CpuMeter:
    """CPU used per part of the stack between start() and stop(), in cores (seconds per second)."""

    parts: dict[str, Callable[[], dict[int, float]]]
    _before: dict[str, dict[int, float]] = field(default_factory=dict)
    _started: float = 0.0
    cores: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, dict[int, float]]:
        return {name: read() for name, read in self.parts.items()}

    def start(self) -> None:
        self._before, self._started = self._read(), time.monotonic()

    def stop(self) -> None:
        after, elapsed = self._read(), time.monotonic() - self._started
        for name, now in after.items():
            used = sum(cpu - self._before[name].get(pid, 0.0) for pid, cpu in now.items())
            self.cores[name] = round(used / elapsed, 2)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def run(admin: str) -> dict[str, Any]:
    rng = random.Random(6)
    n_events = int(RATE * DURATION)
    zone = daytime_zone()
    db_name = f"fc_bench_followup_{os.getpid()}"
    database_url = await devstack.create_database(admin, db_name, drop_first=True)
    work = Path(tempfile.mkdtemp(prefix="bench-followup-"))
    broker = (
        devstack.start_dev_broker(log_dir=work) if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else None
    )
    bootstrap = broker.bootstrap if broker else os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    await ensure_topics(bootstrap, [*topics.ALL_TOPICS, BARE_TOPIC], PARTITIONS)
    _, public_key = generate_keypair(work / "keys")
    sandbox_port = devstack.free_port()
    followup_ports = [devstack.free_port() for _ in range(REPLICAS)]
    env = {
        **BENCH_TUNING,
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_ENABLE_IDEMPOTENCE": os.environ.get("KAFKA_ENABLE_IDEMPOTENCE", "false"),
        "JWT_PUBLIC_KEY_FILE": str(public_key),
        "SMS_PROVIDER_URL": f"http://127.0.0.1:{sandbox_port}",
        "SMS_PROVIDER_API_KEY": SANDBOX_KEY,
        "SMS_SANDBOX_API_KEY": SANDBOX_KEY,
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        "PROMISE_CHECK_INTERVAL_S": "3600",
        "PYTHONUNBUFFERED": "1",
    }
    poll_ms = int(env.get("CONSUMER_POLL_TIMEOUT_MS", "200"))
    batch_size = int(env.get("CONSUMER_BATCH_SIZE", "500"))
    fetch_wait_ms = int(env["OUTCOME_FETCH_MAX_WAIT_MS"])
    stack = Stack(env, work)
    pool = None
    try:
        stack.start("sms_sandbox", ["-m", "services.followup.sms_sandbox"], HTTP_PORT=str(sandbox_port))
        for index, port in enumerate(followup_ports, 1):
            stack.start(
                f"followup-{index}",
                ["-m", "services.followup"],
                HTTP_PORT=str(port),
                SMS_SENDER_ENABLED="false",
            )
        await wait_http(f"http://127.0.0.1:{sandbox_port}/healthz")
        for port in followup_ports:
            await wait_http(f"http://127.0.0.1:{port}/readyz")
        pool = await asyncpg.create_pool(database_url, min_size=2, max_size=6)
        await pool.execute(OBSERVE_JOBS)

        async def start_bare() -> None:
            bare = stack.start(
                "bare",
                [
                    __file__,
                    "--bare",
                    bootstrap,
                    database_url,
                    str(poll_ms),
                    str(batch_size),
                    str(fetch_wait_ms),
                ],
            )
            await wait_until(lambda: _bare_ready(stack.log_dir, bare), 120, 0.2)

        def cpu_of(pids: list[int]) -> dict[int, float]:
            return {pid: cpu_seconds(pid) for pid in pids}

        meter = CpuMeter(
            {
                "followup": lambda: cpu_of(
                    [p.pid for n, p in stack.processes.items() if n.startswith("followup-")]
                ),
                "postgres": postgres_cpu,
                "broker": lambda: cpu_of([broker.process.pid] if broker and broker.process else []),
                "bench": lambda: cpu_of([os.getpid()]),
            }
        )
        figures = await measure(pool, bootstrap, rng, n_events, zone, start_bare, meter)
        figures.update(await send_all(stack, pool, figures["accounts"]))
        figures.update(
            zone=zone,
            poll_ms=poll_ms,
            batch_size=batch_size,
            fetch_wait_ms=fetch_wait_ms,
            members=f"{REPLICAS} x {env['OUTCOME_CONSUMERS']}",
            partitions=PARTITIONS,
            load=os.getloadavg(),
        )
        return figures
    finally:
        if pool is not None:
            await pool.close()
        stack.stop()
        if broker:
            broker.stop()
        await devstack.drop_database(admin, db_name)


async def _bare_ready(log_dir: Path, bare: subprocess.Popen[bytes]) -> bool:
    if bare.poll() is not None:
        raise RuntimeError("the bare consumer exited; see its log")
    return "READY" in (log_dir / "bare.log").read_text(errors="replace")


async def measure(
    pool: Any,
    bootstrap: str,
    rng: random.Random,
    n_events: int,
    zone: str,
    start_bare: Callable[[], Awaitable[None]],
    meter: CpuMeter,
) -> dict[str, Any]:
    n_accounts = n_events + WARMUP_OUTCOMES
    accounts = [(f"BF-{i:07d}", f"+86137{i:08d}") for i in range(n_accounts)]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        print(f"warm-up: {n_accounts} accounts opened ...", flush=True)
        started = time.monotonic()
        await publish_all(producer, topics.DELINQUENCY, [record(opened(a, ph, zone)) for a, ph in accounts])

        async def all_known() -> bool:
            return int(await pool.fetchval("SELECT count(*) FROM followup.contacts")) >= n_accounts

        if not await wait_until(all_known, 600):
            raise TimeoutError("follow-up did not learn every account")
        print(f"  follow-up knows them after {time.monotonic() - started:.1f} s", flush=True)
        warm = [record(promise_outcome(a, rng)) for a, _ in accounts[:WARMUP_OUTCOMES]]
        all_delivered((await publish_paced(producer, topics.VISIT_OUTCOMES, warm, min(RATE, 500), {}))[1])
        await wait_until(lambda: _jobs_for(pool, [r[0] for r in warm]), 120)
        events = [record(promise_outcome(a, rng)) for a, _ in accounts[WARMUP_OUTCOMES:]]
        figures = await measured_run(pool, producer, events, start_bare, meter)
        return figures | {"accounts": accounts}
    finally:
        await producer.stop()


async def _jobs_for(pool: Any, trigger_ids: list[uuid.UUID]) -> bool:
    count = await pool.fetchval(
        "SELECT count(*) FROM followup.sms_jobs WHERE action = 'sms.promise_confirmation'"
        " AND trigger_event_id = ANY($1::uuid[])",
        trigger_ids,
    )
    return int(count) == len(trigger_ids)


async def measured_run(
    pool: Any,
    producer: AIOKafkaProducer,
    events: list[Record],
    start_bare: Callable[[], Awaitable[None]],
    meter: CpuMeter,
) -> dict[str, Any]:
    """Follow-up first, then the bare loop over the same records at the same rate (its own topic
    and group), one after the other so that neither takes CPU from the other's measurement."""
    print(f"measuring: {len(events)} promise-to-pay outcomes at {RATE}/s through follow-up ...", flush=True)
    meter.start()
    latency, elapsed = await observed(pool, producer, topics.VISIT_OUTCOMES, events, JOBS_CHANNEL)
    meter.stop()
    print("  the same records through the bare consume-and-insert loop ...", flush=True)
    await start_bare()
    bare_latency, _ = await observed(pool, producer, BARE_TOPIC, events, BARE_CHANNEL)
    missing = sum(1 for ms in latency if math.isinf(ms))
    return {
        "events": len(events),
        "rate_per_s": len(events) / elapsed,
        "p50_ms": percentile(latency, 0.50),
        "p90_ms": percentile(latency, 0.90),
        "p99_ms": percentile(latency, 0.99),
        "max_ms": max(latency),
        "bare_p50_ms": percentile(bare_latency, 0.50),
        "bare_p99_ms": percentile(bare_latency, 0.99),
        "jobs_missing": missing,
        "cpu_cores": meter.cores,
        "windows": by_window(latency),
        "bare_windows": by_window(bare_latency),
    }


def by_window(latency: list[float], seconds: int = 10) -> list[tuple[float, float]]:
    """(p50, p99) of each `seconds` of publishing, in order: the dev broker reads a partition's
    whole batch list on every fetch, so its share of every figure grows as the run goes on."""
    size = RATE * seconds
    return [
        (percentile(latency[i : i + size], 0.5), percentile(latency[i : i + size], 0.99))
        for i in range(0, len(latency), size)
    ]


async def observed(
    pool: Any, producer: AIOKafkaProducer, topic: str, events: list[Record], channel: str
) -> tuple[list[float], float]:
    """Publish `events` to `topic` at RATE; per event, ms from publish to its effect (inf: none)."""
    observer = Observer(pool, channel)
    stopping = asyncio.Event()
    watcher = asyncio.create_task(observer.run(stopping))
    await asyncio.sleep(0.2)  # LISTEN is in place before the first event
    # The harness's own heap (every record, stamp and future) is long-lived: a full collection of
    # it stalls publishing and stamping for ~100 ms, which would be charged to what is measured.
    gc.collect()
    gc.freeze()
    published: dict[uuid.UUID, float] = {}
    elapsed, deliveries = await publish_paced(producer, topic, events, RATE, published, (observer,))

    async def caught_up() -> bool:
        return not observer.outstanding

    await wait_until(caught_up, 120, 0.2)
    stopping.set()
    await watcher
    all_delivered(deliveries)
    latency = [
        (observer.seen[i] - published[i]) * 1000 if i in observer.seen else math.inf for i, *_ in events
    ]
    if os.environ.get("LATENCY_TRACE"):
        with open(os.environ["LATENCY_TRACE"] + "." + channel, "w") as out:
            t0 = min(published.values())
            for (i, *_), ms in zip(events, latency, strict=True):
                out.write(f"{published[i] - t0:.4f} {ms:.2f}\n")
    return latency, elapsed


async def send_all(stack: Stack, pool: Any, accounts: list[tuple[str, str]]) -> dict[str, Any]:
    """Two sender processes at once send every confirmation; then count what the sandbox got."""
    expected = len(accounts)
    print(f"sending: {expected} confirmations through the sandbox with two senders ...", flush=True)
    started = time.monotonic()
    for name in ("sender-1", "sender-2"):
        stack.start(
            name,
            ["-m", "services.followup"],
            HTTP_PORT=str(devstack.free_port()),
            EVENT_CONSUMERS_ENABLED="false",
            SMS_SEND_BATCH="50",
            SMS_JOB_POLL_S="0.5",
        )

    async def drained() -> bool:
        left = await pool.fetchval(
            "SELECT count(*) FROM followup.sms_jobs WHERE action = 'sms.promise_confirmation' AND status = 'pending'"
        )
        return int(left) == 0

    complete = await wait_until(drained, DRAIN_S, 1.0)
    seconds = time.monotonic() - started
    sent = int(await pool.fetchval("SELECT count(*) FROM sms_sandbox.messages"))
    duplicates = int(
        await pool.fetchval(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM sms_sandbox.messages"
            " GROUP BY to_number, template_id HAVING count(*) > 1) d"
        )
    ) + int(
        await pool.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM followup.sms_jobs GROUP BY trigger_event_id, action"
            " HAVING count(*) > 1) d"
        )
    )
    return {
        "sms_sent": sent,
        "sms_expected": expected,
        "send_complete": complete,
        "sms_per_s": sent / seconds if seconds else 0.0,
        "duplicate_sms": duplicates,
    }


def report(f: dict[str, Any]) -> None:
    print()
    print(
        f"follow-up, promise-to-pay outcomes on loopback ({f['partitions']} partitions, customers in {f['zone']})"
    )
    print(
        f"  consumers: fetch max wait {f['fetch_wait_ms']} ms, poll timeout {f['poll_ms']} ms, batch"
        f" {f['batch_size']}, {f['members']} outcome group member(s); load average at the end"
        f" {f['load'][0]:.1f} / {f['load'][1]:.1f} / {f['load'][2]:.1f} on {os.cpu_count()} cores"
    )
    print(f"  published          {f['events']} events at {f['rate_per_s']:.0f}/s")
    print(
        f"  outcome → SMS job  p50 {f['p50_ms']:.1f} ms  p90 {f['p90_ms']:.1f} ms  p99 {f['p99_ms']:.1f} ms"
        f"  max {f['max_ms']:.1f} ms  (missing {f['jobs_missing']})"
    )
    print(f"  bare consume+insert p50 {f['bare_p50_ms']:.1f} ms  p99 {f['bare_p99_ms']:.1f} ms")
    for name, key in (("follow-up", "windows"), ("bare", "bare_windows")):
        print(f"  {name} p50/p99 per 10 s: " + "  ".join(f"{a:.0f}/{b:.0f}" for a, b in f[key]))
    print("  CPU while measured, cores: " + ", ".join(f"{k} {v:.2f}" for k, v in f["cpu_cores"].items()))
    print(
        f"  sending (not timed) {f['sms_sent']} of {f['sms_expected']} SMS, {f['sms_per_s']:.0f}/s with two senders"
        f"{'' if f['send_complete'] else ' — DRAIN_S ran out before all were sent'}; duplicates {f['duplicate_sms']}"
    )
    line = {
        "events": f["events"],
        "rate_per_s": round(f["rate_per_s"]),
        "p50_ms": round(f["p50_ms"], 1),
        "p99_ms": round(f["p99_ms"], 1),
        "bare_p99_ms": round(f["bare_p99_ms"], 1),
        "duplicate_sms": f["duplicate_sms"],
    }
    print(json.dumps(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bare", nargs=5, metavar=("BOOTSTRAP", "DSN", "POLL_MS", "BATCH", "FETCH_WAIT_MS"))
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.bare:
        bootstrap, dsn, poll_ms, batch, fetch_wait = args.bare
        asyncio.run(bare_loop(bootstrap, dsn, int(poll_ms), int(batch), int(fetch_wait)))
        return
    admin = devstack.admin_dsn()  # may start an embedded PostgreSQL: outside the event loop
    report(asyncio.run(run(admin)))


if __name__ == "__main__":
    main()
