"""One SMS per trigger, whatever happens: redelivered events, a follow-up process SIGKILLed at
each step of sending, and two follow-up processes running at once.

Follow-up runs as real subprocesses (`python -m services.followup`) on a database of this
module's own; FOLLOWUP_FAULT_STEP makes a process SIGKILL itself at a named step
(services/followup/faults.py), which places the kill exactly where the test needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy import devstack
from services.followup import repository
from services.followup.faults import AFTER_CLAIM, AFTER_PROVIDER_ACCEPTED, BEFORE_COMMIT
from services.followup.handlers import EventHandlers
from services.followup.main import SCHEMA, SERVICE_DIR, bootstrap
from services.followup.settings import FollowupSettings
from services.followup.sms_sandbox.app import SandboxSettings
from services.followup.sms_sandbox.app import create_app as create_sandbox
from shared.db import create_pool, migrate
from shared.events import decode, topics
from tests.conftest import eventually, read_topic
from tests.integration.followup.conftest import (
    SANDBOX_KEY,
    new_account,
    opened,
    outcome,
    promise,
    serving,
    zone_at_local_hour,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class CrashRig:
    database_url: str
    pool: Any
    sandbox_url: str
    env: dict[str, str]
    log_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, **extra: str) -> subprocess.Popen[bytes]:
        env = {**self.env, "HTTP_PORT": str(devstack.free_port()), **extra}
        log = (self.log_dir / f"followup-{len(self.processes)}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "services.followup"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    async def messages(self, phone: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.sandbox_url) as http:
            r = await http.get(
                "/v1/messages", params={"to": phone}, headers={"Authorization": f"Bearer {SANDBOX_KEY}"}
            )
        r.raise_for_status()
        return list(r.json())

    async def job(self, job_id: uuid.UUID) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchrow("SELECT status, attempts FROM sms_jobs WHERE job_id = $1", job_id)

    async def due_job(self, account_id: str, phone: str) -> uuid.UUID:
        """A customer we may text now and a confirmation SMS due now, written as the consumer would."""
        async with self.pool.acquire() as conn, conn.transaction():
            await repository.upsert_contact(conn, opened(account_id, phone, zone_at_local_hour(13)).data)  # type: ignore[arg-type]
            now = datetime.now(UTC)
            job = repository.NewSmsJob(
                trigger_event_id=uuid.uuid4(),
                action="sms.promise_confirmation",
                account_id=account_id,
                template_id="promise_confirmation",
                params={"amount": "100.00", "currency": "CNY", "date": "2026-12-24"},
                purpose="collection",
                status="pending",
                due_at=now,
                not_after=now + timedelta(days=1),
            )
            job_id = await repository.insert_sms_job(conn, job)
        assert job_id is not None
        return job_id


@pytest.fixture(scope="module")
async def rig(admin_dsn, kafka_bootstrap, service_env, tmp_path_factory) -> AsyncIterator[CrashRig]:
    name = f"fc_followup_crash_{uuid.uuid4().hex[:8]}"
    database_url = await devstack.create_database(admin_dsn, name, drop_first=True)
    pool = await create_pool(database_url, SCHEMA, 1, 4)
    async with pool.acquire() as conn:
        await migrate(conn, SCHEMA, SERVICE_DIR)
    sandbox_port = devstack.free_port()
    # No automatic receipts: a killed sender cannot take them, and they are not under test here.
    sandbox = create_sandbox(
        SandboxSettings(database_url=database_url, http_port=sandbox_port, sms_sandbox_auto_receipts=False)
    )
    env = {
        **service_env,
        "DATABASE_URL": database_url,
        "SMS_PROVIDER_URL": f"http://127.0.0.1:{sandbox_port}",
        "SMS_JOB_POLL_S": "0.2",
        "CONSUMER_POLL_TIMEOUT_MS": "50",
        "PYTHONUNBUFFERED": "1",
    }
    env = {**__import__("os").environ, **env}
    env.pop("FOLLOWUP_FAULT_STEP", None)
    async with serving(sandbox, sandbox_port) as sandbox_url:
        rig = CrashRig(database_url, pool, sandbox_url, env, tmp_path_factory.mktemp("followup-logs"))
        try:
            yield rig
        finally:
            for process in rig.processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
            await pool.close()
            await devstack.drop_database(admin_dsn, name)


async def exited(process: subprocess.Popen[bytes], timeout_s: float = 60) -> int:
    async def done() -> bool:
        return process.poll() is not None

    await eventually(done, timeout_s=timeout_s)
    assert process.returncode is not None
    return process.returncode


async def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    await exited(process, timeout_s=40)


async def sms_sent_events(bootstrap: str, job_ids: set[uuid.UUID]) -> list[Any]:
    def mine(records: list[Any]) -> list[Any]:
        events = (decode(r.value, r.headers) for r in records)
        return [e for e in events if e.type == "sms.sent" and e.data.job_id in job_ids]

    records = await read_topic(bootstrap, topics.FOLLOWUPS, lambda rs: len(mine(rs)) >= len(job_ids))
    return mine(records)


@pytest.mark.parametrize(
    ("step", "sent_before_the_kill"),
    [(AFTER_CLAIM, 0), (AFTER_PROVIDER_ACCEPTED, 1), (BEFORE_COMMIT, 1)],
)
async def test_a_sender_killed_at_any_step_sends_once(
    rig, kafka_bootstrap, step, sent_before_the_kill
) -> None:
    account, phone = new_account()
    job_id = await rig.due_job(account, phone)

    doomed = rig.start(FOLLOWUP_FAULT_STEP=step, EVENT_CONSUMERS_ENABLED="false")
    assert await exited(doomed) == -signal.SIGKILL
    assert len(await rig.messages(phone)) == sent_before_the_kill
    assert (await rig.job(job_id))["status"] == "pending", "nothing committed: the job is due again"

    survivor = rig.start(EVENT_CONSUMERS_ENABLED="false")

    async def sent() -> bool:
        return (await rig.job(job_id))["status"] == "sent"

    await eventually(sent, timeout_s=60)
    messages = await rig.messages(phone)
    assert len(messages) == 1 and messages[0]["idempotency_key"] == str(job_id)
    assert len(await sms_sent_events(kafka_bootstrap, {job_id})) == 1
    await stop(survivor)


async def test_two_senders_at_once_send_each_job_once(rig, kafka_bootstrap) -> None:
    accounts = [new_account() for _ in range(40)]
    job_ids = {await rig.due_job(account, phone) for account, phone in accounts}
    senders = [rig.start(EVENT_CONSUMERS_ENABLED="false", SMS_SEND_BATCH="3") for _ in range(2)]

    async def all_sent() -> bool:
        async with rig.pool.acquire() as conn:
            left = await conn.fetchval(
                "SELECT count(*) FROM sms_jobs WHERE job_id = ANY($1::uuid[]) AND status <> 'sent'",
                list(job_ids),
            )
        return left == 0

    await eventually(all_sent, timeout_s=90)
    counts = [len(await rig.messages(phone)) for _, phone in accounts]
    assert counts == [1] * len(accounts)
    events = await sms_sent_events(kafka_bootstrap, job_ids)
    assert sorted(str(e.data.job_id) for e in events) == sorted(str(j) for j in job_ids)
    for sender in senders:
        await stop(sender)


async def test_a_redelivered_outcome_applied_twice_makes_one_job_per_action(rig) -> None:
    """Even past the inbox (a replay from the dead-letter topic, a bug): the job key holds."""
    account, phone = new_account()
    handlers = EventHandlers(bootstrap(FollowupSettings()))  # type: ignore[call-arg]
    made = outcome(account, promise(days=5))
    async with rig.pool.acquire() as conn:
        await repository.upsert_contact(conn, opened(account, phone, zone_at_local_hour(13)).data)  # type: ignore[arg-type]
        for _ in range(2):
            async with conn.transaction():
                await handlers.on_outcome_recorded(conn, made)
        rows = await conn.fetch("SELECT action FROM sms_jobs WHERE account_id = $1 ORDER BY action", account)
        promises = await conn.fetchval("SELECT count(*) FROM promises WHERE account_id = $1", account)
    assert [r["action"] for r in rows] == ["sms.promise_confirmation", "sms.promise_reminder"]
    assert promises == 1


async def test_two_followups_consuming_duplicates_with_one_killed_send_one_sms_per_trigger(
    rig, kafka_bootstrap
) -> None:
    from aiokafka import AIOKafkaProducer

    first, second = rig.start(), rig.start()
    customers = [new_account() for _ in range(12)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for account, phone in customers:
            event = opened(account, phone, zone_at_local_hour(13))
            await producer.send_and_wait(event.topic, event.value(), key=event.key, headers=event.headers())

        async def known() -> bool:
            async with rig.pool.acquire() as conn:
                count = await conn.fetchval(
                    "SELECT count(*) FROM contacts WHERE account_id = ANY($1::text[])",
                    [a for a, _ in customers],
                )
            return count == len(customers)

        await eventually(known, timeout_s=90)
        outcomes = [outcome(account, promise(days=5)) for account, _ in customers]
        for event in outcomes + outcomes:  # every outcome delivered twice
            await producer.send_and_wait(event.topic, event.value(), key=event.key, headers=event.headers())
    finally:
        await producer.stop()

    async def some_sent() -> bool:
        return any([await rig.messages(phone) for _, phone in customers])

    await eventually(some_sent, timeout_s=60)
    first.kill()  # SIGKILL mid-flight: its partitions and jobs move to the other process

    async def every_customer_texted() -> bool:
        return all([await rig.messages(phone) for _, phone in customers])

    await eventually(every_customer_texted, timeout_s=90)
    await asyncio.sleep(1.0)
    counts = [len(await rig.messages(phone)) for _, phone in customers]
    assert counts == [1] * len(customers)
    with contextlib.suppress(Exception):
        await stop(second)
