"""The visits service in-process (its real lifespan: pool, migrations, producer, relay,
consumers) on the session's PostgreSQL and broker, driven through httpx's ASGI transport.

Visits are seeded by applying visit.assigned through the service's own handler in a
transaction (the consumer path is tested on its own through the broker). Customers live in
Asia/Shanghai under the `cn` pack; check-in instants are chosen explicitly (`at_local`) so
the contact-hours rule decides the same way whatever the time and date the tests run.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import httpx
import pytest
from fastapi import FastAPI

from services.visits import handlers
from services.visits.main import create_app
from services.visits.settings import VisitsSettings
from shared.events import Envelope, decode, topics
from shared.events import payloads as p
from tests.conftest import read_topic

ZONE = "Asia/Shanghai"
# A door in Shenzhen, and points at known distances from it.
HOME = (22.5431, 113.9436)


def north_of(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return point[0] + metres / 111_195.0, point[1]


def at_local(hour: int, minute: int = 0, zone: str = ZONE) -> datetime:
    """This local time on the latest day before today that is not a CN public holiday.

    One reference day for every call, so `at_local(10)` is always before `at_local(10, 10)`.
    """
    tz = ZoneInfo(zone)
    today = datetime.now(tz).date()
    for days_back in range(1, 30):
        day = today - timedelta(days=days_back)
        if day not in holidays.country_holidays("CN", years=day.year):
            return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)
    raise AssertionError("no working day in 30 days")


@dataclass
class Visits:
    app: FastAPI
    client: httpx.AsyncClient
    token: Callable[..., str]

    @property
    def pool(self) -> Any:
        return self.app.state.runtime.pool

    def agent(self, agent_id: str, team: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(agent_id, 'agent', team)}"}

    def supervisor(self, team: str | None, subject: str = "SUP-1") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, 'supervisor', team)}"}

    async def assign(
        self,
        agent_id: str,
        *,
        team: str | None = None,
        plan_date: date | None = None,
        sequence: int = 1,
        location: tuple[float, float] | None = HOME,
        country: str = "CN",
        currency: str | None = "CNY",
        account_id: str | None = None,
    ) -> p.VisitAssigned:
        """A visit assigned to the agent, applied through the consumer's handler."""
        plan_date = plan_date or datetime.now(ZoneInfo(ZONE)).date()
        start = datetime(plan_date.year, plan_date.month, plan_date.day, 10, tzinfo=ZoneInfo(ZONE))
        data = p.VisitAssigned(
            account_id=account_id or f"ACC-{uuid.uuid4().hex[:10]}",
            visit_id=uuid.uuid4(),
            agent_id=agent_id,
            plan_date=plan_date,
            sequence=sequence,
            window_start=start + timedelta(hours=sequence),
            window_end=start + timedelta(hours=sequence, minutes=45),
            address=p.Address(
                line1="18 Keyuan Road",
                city="Shenzhen",
                country=country,
                location=p.GeoPoint(lat=location[0], lon=location[1]) if location else None,
            ),
            time_zone=ZONE,
            language="zh-CN",
            customer_name="Wang Fang",
            briefing=p.Briefing(
                currency=currency, overdue_amount=Decimal("2500.00"), outstanding=Decimal("9000.00"), dpd=75
            ),
            team=team,
        )
        await self.apply(data)
        return data

    async def apply(self, data: Any) -> None:
        event = Envelope(data=data, source="/tests/planner")
        handler = {
            "visit.assigned": handlers.on_visit_assigned,
            "visit.rescheduled": handlers.on_visit_rescheduled,
            "visit.cancelled": handlers.on_visit_cancelled,
        }[event.type]
        async with self.pool.acquire() as conn, conn.transaction():
            await handler(conn, event)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def check_in(
        self,
        agent_id: str,
        visit_id: uuid.UUID,
        *,
        at: datetime | None = None,
        position: tuple[float, float] = HOME,
        accuracy_m: float = 8.0,
        mock_location: bool = False,
        clock_error: timedelta = timedelta(0),
        checkin_id: uuid.UUID | None = None,
        headers: dict[str, str] | None = None,
        exact: bool = False,
    ) -> httpx.Response:
        """A check-in made at `at` (default: 10:00 local on a working day) and sent now.

        `clock_error` is how far the device's clock is ahead of true time. Positions get a
        sub-centimetre jitter (two real fixes are never identical) unless `exact`.
        """
        at = at or at_local(10)
        if not exact:
            position = (position[0] + random.uniform(1e-9, 1e-7), position[1])
        device_clock = datetime.now(UTC) + clock_error
        body = {
            "checkin_id": str(checkin_id or uuid.uuid4()),
            "device_time": (at + clock_error).isoformat(),
            "position": {"lat": position[0], "lon": position[1], "accuracy_m": accuracy_m},
            "mock_location": mock_location,
        }
        return await self.client.post(
            f"/v1/me/visits/{visit_id}/check-ins",
            json=body,
            headers={**self.agent(agent_id), "X-Device-Clock": device_clock.isoformat(), **(headers or {})},
        )


def promise_body(**overrides: Any) -> dict[str, Any]:
    today = datetime.now(ZoneInfo(ZONE)).date()
    body = {
        "outcome_id": str(uuid.uuid4()),
        "recorded_at": datetime.now(UTC).isoformat(),
        "outcome": {
            "kind": "promise_to_pay",
            "amount": "500.00",
            "promised_date": (today + timedelta(days=5)).isoformat(),
        },
        "notes": "Will pay after salary day.",
        "observation": {"willingness_to_pay": "willing", "ability_to_pay": "partly_able"},
        "recording_ref": "rec-0001",
    }
    return {**body, **overrides}


def cash_body(
    receipt: str, amount: str = "800.00", kind: str = "paid_on_site", **overrides: Any
) -> dict[str, Any]:
    cash = {
        "outcome": {"kind": kind, "amount": amount, "receipt_number": receipt},
        "cash_confirmation": {"method": "signature", "reference": f"sig-{uuid.uuid4().hex[:8]}"},
    }
    return promise_body(**{**cash, **overrides})


async def texted_code(
    visits: Visits, kafka_bootstrap: str, agent_id: str, visit: p.VisitAssigned, receipt: str, amount: str
) -> dict[str, str]:
    """Ask for the customer's one-time code and read it where follow-up would: from the event.

    Returns the `cash_confirmation` of an outcome that the customer confirmed.
    """
    confirmation_id = str(uuid.uuid4())
    r = await visits.client.post(
        f"/v1/me/visits/{visit.visit_id}/cash-confirmations",
        json={"confirmation_id": confirmation_id, "amount": amount, "receipt_number": receipt},
        headers=visits.agent(agent_id),
    )
    assert r.status_code == 201, r.text

    def texted(records: list[Any]) -> list[Any]:
        events = [decode(x.value, x.headers) for x in records if x.key == visit.account_id.encode()]
        return [e for e in events if e.type == "visit.cash_confirmation_requested"]

    events = texted(await read_topic(kafka_bootstrap, topics.VISIT_OUTCOMES, texted))
    [event] = [e for e in events if str(e.data.confirmation_id) == confirmation_id]
    return {"method": "otp", "reference": confirmation_id, "code": event.data.code}


@pytest.fixture(scope="package")
async def visits(service_env, token) -> AsyncIterator[Visits]:
    app = create_app(VisitsSettings(consumer_poll_timeout_ms=50))
    async with app.router.lifespan_context(app):
        for runner in app.state.runtime.consumers:
            await runner.wait_for_assignment()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield Visits(app, client, token)


@pytest.fixture
def agent_id() -> str:
    return f"AG-{uuid.uuid4().hex[:8]}"
