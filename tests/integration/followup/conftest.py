"""Follow-up against the real PostgreSQL, the real broker and the SMS sandbox (a real HTTP server).

The service runs in-process under uvicorn on a free port, so the sandbox can call its
webhooks back; crash tests run it as a subprocess instead (test_exactly_once.py).
Customers live in a zone where it is daytime now, so the contact hours let SMS go out
whatever time the tests run; the night-time tests pick a zone where it is night.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from deploy import devstack
from services.followup.main import create_app
from services.followup.settings import FollowupSettings
from services.followup.sms_sandbox.app import SandboxSettings
from services.followup.sms_sandbox.app import create_app as create_sandbox
from shared.events import Envelope, decode, topics
from shared.events import payloads as p
from tests.conftest import eventually, read_topic

SANDBOX_KEY = devstack.SANDBOX_KEY


def zone_at_local_hour(hour: int, now: datetime | None = None) -> str:
    """An IANA zone (Etc/GMT±N) whose local time now is around `hour`."""
    now = now or datetime.now(UTC)
    offset = (hour - now.hour + 12) % 24 - 12  # -12..+11
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-8 is UTC+8


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    """Run an ASGI app under uvicorn (lifespan included) on a loopback port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Followup:
    url: str
    sandbox_url: str
    app: FastAPI
    bootstrap: str
    producer: AIOKafkaProducer
    token: Callable[..., str]

    @property
    def pool(self) -> Any:
        return self.app.state.runtime.pool

    def auth(self, role: str, subject: str = "tester") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, role)}"}

    async def publish(self, *events: Envelope) -> None:
        for event in events:
            await self.producer.send_and_wait(
                event.topic, event.value(), key=event.key, headers=event.headers()
            )

    async def sandbox_messages(self, phone: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as http:
            r = await http.get(
                f"{self.sandbox_url}/v1/messages",
                params={"to": phone},
                headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
            )
        r.raise_for_status()
        return list(r.json())

    async def open_account(self, account_id: str, phone: str, zone: str, **kw: Any) -> None:
        """delinquency.opened, and wait until follow-up knows the customer."""
        await self.publish(opened(account_id, phone, zone, **kw))

        async def known() -> bool:
            return bool(await self.fetch("SELECT 1 FROM contacts WHERE account_id = $1", account_id))

        await eventually(known)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def followup_events(
        self, account_id: str, until: Callable[[list[Envelope]], bool]
    ) -> list[Envelope]:
        """Events follow-up published about this account, once `until(events)` holds."""

        def mine(records: list[Any]) -> list[Envelope]:
            return [decode(r.value, r.headers) for r in records if r.key == account_id.encode()]

        records = await read_topic(self.bootstrap, topics.FOLLOWUPS, lambda rs: until(mine(rs)), timeout_s=30)
        return mine(records)


@pytest.fixture(scope="module")
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture(scope="module")
async def followup(service_env, kafka_bootstrap, producer, token) -> AsyncIterator[Followup]:
    sandbox_port, port = devstack.free_port(), devstack.free_port()
    sandbox = create_sandbox(
        SandboxSettings(
            http_port=sandbox_port, sms_sandbox_delivery_delay_s=0.05, sms_sandbox_auto_receipts=True
        )
    )
    settings = FollowupSettings(  # type: ignore[call-arg]
        http_port=port,
        sms_provider_url=f"http://127.0.0.1:{sandbox_port}",
        sms_job_poll_s=0.2,
        promise_check_interval_s=0.3,
        consumer_poll_timeout_ms=50,
    )
    app = create_app(settings)
    async with serving(sandbox, sandbox_port) as sandbox_url, serving(app, port) as url:
        for runner in app.state.runtime.consumers:
            await runner.wait_for_assignment()
        yield Followup(url, sandbox_url, app, kafka_bootstrap, producer, token)


# --- events --------------------------------------------------------------------------------


def new_account() -> tuple[str, str]:
    """A fresh account id and a phone number of its own."""
    n = uuid.uuid4().int
    return f"FU-{uuid.uuid4().hex[:10]}", f"+86139{n % 100_000_000:08d}"


def opened(account_id: str, phone: str, zone: str, dpd: int = 30, **flags: bool) -> Envelope:
    data = p.DelinquencyOpened(
        account_id=account_id,
        customer_id=f"C-{account_id}",
        product="cash_loan",
        currency="CNY",
        as_of=date.today(),
        principal=Decimal("10000.00"),
        outstanding=Decimal("6000.00"),
        overdue_amount=Decimal("900.00"),
        dpd=dpd,
        dpd_bucket="31-60",
        contact=p.ContactDetails(name="Test Customer", phone=phone, language="zh-CN", time_zone=zone),
        address=p.Address(line1="1 Test Rd", city="Shenzhen", country="CN"),
        flags=p.CustomerFlags(**flags),
    )
    return Envelope(data=data, source="/tests/intake")


def outcome(account_id: str, result: Any, recorded_at: datetime | None = None) -> Envelope:
    data = p.VisitOutcomeRecorded(
        account_id=account_id,
        visit_id=uuid.uuid4(),
        agent_id="AG-T",
        outcome_id=uuid.uuid4(),
        recorded_at=recorded_at or datetime.now(UTC),
        outcome=result,
        currency="CNY",
        recording_ref="rec-test",
    )
    return Envelope(data=data, source="/tests/visits")


def promise(amount: str = "300.00", days: int = 5) -> p.PromiseToPay:
    return p.PromiseToPay(amount=Decimal(amount), promised_date=date.today() + timedelta(days=days))


def payment(account_id: str, amount: str, overdue_after: str) -> Envelope:
    data = p.PaymentReceived(
        account_id=account_id,
        as_of=date.today(),
        amount=Decimal(amount),
        currency="CNY",
        overdue_amount_after=Decimal(overdue_after),
        paid_on=date.today(),
    )
    return Envelope(data=data, source="/tests/intake")
