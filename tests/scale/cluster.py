"""Several `python -m services.visits` processes in one consumer group, and a stream of
assignments whose end state depends on per-account order.

Shared by the scale-out test and the scale benchmark. Each run gets its own development
broker and database: the visits consumer group id is fixed by the service, so a broker of
its own is what keeps runs from seeing each other's committed offsets.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from deploy import devstack
from services.visits.consumers import CONSUMERS
from services.visits.main import SCHEMA, SERVICE_DIR
from shared.auth import generate_keypair
from shared.db import create_pool, migrate
from shared.events import Envelope
from shared.events import payloads as p
from shared.events.topics import ALL_TOPICS, ASSIGNMENTS
from shared.kafka import ensure_topics

GROUP = CONSUMERS[0].group_id
SOURCE = "/fieldcollect/planner"


@dataclass
class Environment:
    """A dev broker and a database of their own, with the visits schema migrated."""

    admin_dsn: str
    broker: devstack.Broker
    database: str
    database_url: str
    pool: Any

    @classmethod
    async def create(cls, admin_dsn: str, log_dir: Path, partitions: int) -> Environment:
        broker = await asyncio.to_thread(devstack.start_dev_broker, None, log_dir)
        database = f"fc_scale_{uuid.uuid4().hex[:8]}"
        created = False
        pool = None
        try:
            await ensure_topics(broker.bootstrap, ALL_TOPICS, partitions)
            database_url = await devstack.create_database(admin_dsn, database, drop_first=True)
            created = True
            pool = await create_pool(database_url, SCHEMA, 1, 4)
            async with pool.acquire() as conn:
                await migrate(conn, SCHEMA, SERVICE_DIR)
        except BaseException:
            if pool is not None:
                await pool.close()
            if created:
                await devstack.drop_database(admin_dsn, database)
            broker.stop()
            raise
        return cls(admin_dsn, broker, database, database_url, pool)

    async def close(self) -> None:
        await self.pool.close()
        await devstack.drop_database(self.admin_dsn, self.database)
        await asyncio.to_thread(self.broker.stop)

    async def inbox(self) -> list[Any]:
        async with self.pool.acquire() as conn:
            return list(
                await conn.fetch(
                    'SELECT event_id, partition, "offset", processed_at FROM inbox WHERE consumer = $1',
                    GROUP,
                )
            )

    async def inbox_count(self) -> int:
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", GROUP))

    async def visit_statuses(self) -> dict[uuid.UUID, str]:
        async with self.pool.acquire() as conn:
            return {
                r["visit_id"]: r["status"] for r in await conn.fetch("SELECT visit_id, status FROM visits")
            }


@dataclass
class VisitsInstances:
    """`python -m services.visits` processes (API, consumers, relay) on distinct ports."""

    env: Environment
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    stack: devstack.Stack = field(init=False)

    def __post_init__(self) -> None:
        private, public = generate_keypair(self.log_dir / "keys")
        self.stack = devstack.Stack(
            self.env.database_url, self.env.broker.bootstrap, private.read_text(), public
        )

    def start(self, count: int) -> list[str]:
        names = []
        for _ in range(count):
            name = f"visits-{len(self.stack.processes) + 1}"
            env = {"RUN_CONSUMERS": "true", "LOG_LEVEL": "WARNING", **self.extra_env}
            self.stack.start(name, "services.visits", devstack.free_port(), self.log_dir, env)
            names.append(name)
        return names

    async def wait_ready(self, timeout_s: float = 120) -> None:
        await asyncio.to_thread(devstack.wait_ready, self.stack, timeout_s)

    def kill(self, name: str) -> None:
        """SIGKILL: no graceful leave, no last commit; the broker notices by session timeout."""
        process = self.stack.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        self.stack.stop()

    async def consumed(self, name: str) -> Counter[str]:
        """This instance's events consumed by outcome (processed, duplicate, …), from /metrics."""
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"{self.stack.url(name)}/metrics")).text
        counts: Counter[str] = Counter()
        for family in text_string_to_metric_families(text):
            if family.name != "fieldcollect_events_consumed":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("group") == GROUP:
                    counts[sample.labels["outcome"]] += int(sample.value)
        return counts


@dataclass
class AssignmentStream:
    """Per account, visits assigned then cancelled in turn (key = account id).

    Applied out of order, a cancellation finds no visit (or an assigned one stays
    assigned), so the final status of every visit shows whether order was kept.
    """

    accounts: Sequence[str]
    agent_id: str = "AG-SCALE"
    events: dict[str, list[Envelope]] = field(default_factory=dict)
    open_visit: dict[str, uuid.UUID | None] = field(default_factory=dict)

    @classmethod
    def of(cls, count: int, prefix: str) -> AssignmentStream:
        return cls([f"{prefix}-{n:05d}" for n in range(count)])

    def step(self, number: int) -> list[Envelope]:
        """Step n: accounts whose turn it is get a new visit, the others lose their open one."""
        produced = []
        for index, account in enumerate(self.accounts):
            if (number + index) % 2 == 0:
                event = self._assigned(account, len(self.events.get(account, ())))
                self.open_visit[account] = event.data.visit_id  # type: ignore[union-attr]
            elif (visit_id := self.open_visit.get(account)) is not None:
                data = p.VisitCancelled(
                    account_id=account, visit_id=visit_id, agent_id=self.agent_id, reason="replanned"
                )
                event = Envelope(data=data, source=SOURCE)
                self.open_visit[account] = None
            else:
                continue
            self.events.setdefault(account, []).append(event)
            produced.append(event)
        return produced

    def _assigned(self, account: str, sequence: int) -> Envelope:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        data = p.VisitAssigned(
            account_id=account,
            visit_id=uuid.uuid4(),
            agent_id=self.agent_id,
            plan_date=date.today(),
            sequence=sequence,
            window_start=start,
            window_end=start + timedelta(minutes=30),
            address=p.Address(line1="1 Rizal Avenue", city="Manila", country="PH"),
            time_zone="Asia/Manila",
            language="en",
            briefing=p.Briefing(),
        )
        return Envelope(data=data, source=SOURCE)

    @property
    def total(self) -> int:
        return sum(len(e) for e in self.events.values())

    def expected_statuses(self) -> dict[uuid.UUID, str]:
        """What the visits table must say if every event was applied once, in order."""
        expected: dict[uuid.UUID, str] = {}
        for events in self.events.values():
            for event in events:
                data = event.data
                if isinstance(data, p.VisitAssigned):
                    expected[data.visit_id] = "assigned"
                elif isinstance(data, p.VisitCancelled):
                    expected[data.visit_id] = "cancelled"
        return expected


async def start_producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5
    )
    await producer.start()
    return producer


async def produce(producer: AIOKafkaProducer, events: Sequence[Envelope]) -> None:
    """Send in order (one batch in flight per partition keeps per-key order) and wait for acks."""
    pending = [
        await producer.send(ASSIGNMENTS, value=e.value(), key=e.key, headers=e.headers()) for e in events
    ]
    await asyncio.gather(*pending)
