"""The planner's visit.assigned, visit.rescheduled and visit.cancelled, consumed from the broker."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer

from shared.events import Envelope
from shared.events import payloads as p
from tests.conftest import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def producer(kafka_bootstrap):
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


async def publish(producer, data) -> Envelope:
    event = Envelope(data=data, source="/tests/planner")
    await producer.send_and_wait(event.topic, event.value(), key=event.key, headers=event.headers())
    return event


async def test_assigned_rescheduled_and_cancelled_are_applied_in_order(visits, producer, agent_id) -> None:
    account, visit_id = f"ACC-{uuid.uuid4().hex[:8]}", uuid.uuid4()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    assigned = p.VisitAssigned(
        account_id=account,
        visit_id=visit_id,
        agent_id=agent_id,
        plan_date=start.date(),
        sequence=2,
        window_start=start,
        window_end=start + timedelta(minutes=45),
        address=p.Address(line1="1 Test Rd", city="Shenzhen", country="CN"),
        time_zone="Asia/Shanghai",
        language="zh-CN",
        briefing=p.Briefing(currency="CNY", overdue_amount=Decimal("10.00")),
        team="T-consumed",
    )
    await publish(producer, assigned)
    await publish(producer, assigned.model_copy())  # redelivered by the planner's relay: a new event id

    async def row():
        rows = await visits.fetch(
            "SELECT plan_date, sequence, status, team FROM visits WHERE visit_id = $1", visit_id
        )
        return rows[0] if rows else None

    first = await eventually(row)
    assert (first["sequence"], first["status"], first["team"]) == (2, "assigned", "T-consumed")
    await publish(
        producer,
        p.VisitRescheduled(
            account_id=account,
            visit_id=visit_id,
            agent_id=agent_id,
            plan_date=start.date() + timedelta(days=1),
            sequence=5,
            window_start=start + timedelta(days=1),
            window_end=start + timedelta(days=1, minutes=30),
        ),
    )

    async def moved():
        r = await row()
        return r if r["sequence"] == 5 else None

    assert (await eventually(moved))["plan_date"] == start.date() + timedelta(days=1)
    await publish(
        producer,
        p.VisitCancelled(
            account_id=account, visit_id=visit_id, agent_id=agent_id, reason="agent unavailable: reassigned"
        ),
    )
    last = await publish(
        producer,
        p.VisitRescheduled(
            account_id=account,
            visit_id=visit_id,
            agent_id=agent_id,
            plan_date=start.date(),
            sequence=1,
            window_start=start,
            window_end=start + timedelta(minutes=30),
        ),
    )

    async def applied():
        return await visits.fetch(
            "SELECT 1 FROM inbox WHERE consumer = 'visits.assignments' AND event_id = $1", last.id
        )

    await eventually(applied)
    final = await row()
    assert (final["status"], final["sequence"]) == ("cancelled", 5), "a cancelled visit is not moved"
    assert len(await visits.fetch("SELECT 1 FROM visits WHERE visit_id = $1", visit_id)) == 1
    listed = await visits.client.get("/v1/me/visits", headers=visits.agent(agent_id))
    assert [v["status"] for v in listed.json()] == ["cancelled"]
