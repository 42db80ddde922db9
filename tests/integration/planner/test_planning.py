"""Day plans on the real PostgreSQL: legal, trained, routed — and re-planned on the right events."""

import asyncio
import json
import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

import asyncpg
import pytest

from services.planner import handlers, repository
from services.planner.main import SERVICE_DIR
from services.planner.models import AgentIn
from services.planner.planning import PlanOptions, plan_day
from shared.events import Envelope, topics
from shared.events import payloads as p
from tests.conftest import migrated_pool
from tests.integration.planner.checker import check_plan

pytestmark = pytest.mark.integration
PLAN_DATE = date(2026, 12, 2)  # a Wednesday, no holiday in CN
AS_OF = PLAN_DATE - timedelta(days=1)
OPTIONS = PlanOptions(time_limit_s=2.0)
CENTRE = (22.543, 114.058)


@pytest.fixture
async def pool(database_url):
    async with migrated_pool(database_url, SERVICE_DIR, "planner", 6) as pool:
        yield pool


def agent(agent_id: str, **overrides) -> AgentIn:
    values = {
        "agent_id": agent_id, "display_name": agent_id, "region": "shenzhen", "home_lat": CENTRE[0],
        "home_lon": CENTRE[1], "daily_capacity": 8, "certified_until": PLAN_DATE + timedelta(days=30),
        "languages": ["zh-CN"], "hardship_trained": False,
    }  # fmt: skip
    values.update(overrides)
    return AgentIn(**values)


def opened(account: str, rng: random.Random, **overrides) -> Envelope:
    contact = {"time_zone": "Asia/Shanghai", "language": "zh-CN", "phone": "+8613800000000", "name": "Test"}
    contact.update(overrides.pop("contact", {}))
    values = {
        "account_id": account, "customer_id": f"C-{account}", "product": "cash_loan", "currency": "CNY",
        "as_of": AS_OF, "principal": Decimal(20000), "outstanding": Decimal(9000), "overdue_amount": Decimal(3000),
        "dpd": 75, "dpd_bucket": "61-90", "priority_score": 5.0,
        "contact": p.ContactDetails(**contact),
        "address": p.Address(line1="1 Rd", city="Shenzhen", country="CN",
                             location=p.GeoPoint(lat=CENTRE[0] + rng.uniform(-0.05, 0.05),
                                                 lon=CENTRE[1] + rng.uniform(-0.08, 0.08))),
    }  # fmt: skip
    values.update(overrides)
    return Envelope(data=p.DelinquencyOpened(**values), source="/test")


async def seed(pool, agents, events) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for a in agents:
            await repository.upsert_agent(conn, a)
        for event in events:
            await handlers.on_delinquency_opened(conn, event)


async def plan(pool, options=OPTIONS):
    async with pool.acquire() as conn, conn.transaction():
        return await plan_day(conn, PLAN_DATE, "shenzhen", options)


async def state(pool):
    async with pool.acquire() as conn:
        visits = await conn.fetch("SELECT * FROM visits WHERE status = 'planned'")
        agents = {r["agent_id"]: r for r in await conn.fetch("SELECT * FROM agents")}
        cases = {r["account_id"]: r for r in await conn.fetch("SELECT * FROM cases")}
        outbox = [dict(zip(r["header_keys"], r["header_values"], strict=True))[b"ce_type".decode()].decode()
                  for r in await conn.fetch("SELECT header_keys, header_values FROM outbox ORDER BY id")]  # fmt: skip
    return visits, agents, cases, outbox


def checked(visits, agents, cases) -> list[str]:
    return check_plan(visits, agents, cases, PLAN_DATE, speed_kmh=OPTIONS.travel_speed_kmh,
                      road_factor=OPTIONS.road_factor, break_minutes=OPTIONS.break_minutes)  # fmt: skip


async def test_routes_respect_windows_shifts_breaks_skills_and_contact_hours(pool) -> None:
    rng = random.Random(1)
    events = [opened(f"A{i:03d}", rng) for i in range(24)]
    events += [opened(f"E{i:03d}", rng, contact={"language": "en"}) for i in range(3)]
    agents = [agent("AG-1"), agent("AG-2", hardship_trained=True), agent("AG-3", languages=["zh-CN", "en"]),
              agent("AG-X", certified_until=PLAN_DATE - timedelta(days=1))]  # fmt: skip
    await seed(pool, agents, events)
    outcome = await plan(pool)
    visits, agents_by_id, cases, outbox = await state(pool)
    assert checked(visits, agents_by_id, cases) == []
    assert len(visits) == outcome.assigned > 12
    assert not [v for v in visits if v["agent_id"] == "AG-X"], "expired certification: never assigned"
    english = {v["agent_id"] for v in visits if v["account_id"].startswith("E")}
    assert english <= {"AG-3"}
    assert outbox.count("visit.assigned") == outcome.assigned
    assert len(outcome.unplanned) == len(events) - outcome.assigned
    assert all(u["reason"] for u in outcome.unplanned)


async def test_each_assignment_names_the_agents_team_for_its_supervisors(pool) -> None:
    rng = random.Random(4)
    await seed(pool, [agent("AG-N", team="north", daily_capacity=3), agent("AG-S", team="south", daily_capacity=3)],
               [opened(f"T{i:02d}", rng) for i in range(6)])  # fmt: skip
    await plan(pool)
    async with pool.acquire() as conn:
        values = await conn.fetch("SELECT value FROM outbox WHERE topic = $1 ORDER BY id", topics.ASSIGNMENTS)
    assigned = [json.loads(r["value"]) for r in values]
    assert assigned and all(a["type"] == "visit.assigned" for a in assigned)
    assert {(a["agent_id"], a["team"]) for a in assigned} <= {("AG-N", "north"), ("AG-S", "south")}
    assert {a["team"] for a in assigned} == {"north", "south"}


async def test_a_vulnerable_customer_is_visited_only_by_a_hardship_trained_agent(pool) -> None:
    rng = random.Random(2)
    # The strategy offers care first to vulnerable customers past 30 days; a revisit request
    # from follow-up still sends them to the door, with a trained agent.
    event = opened("VUL-1", rng, flags=p.CustomerFlags(vulnerable=True))
    await seed(pool, [agent("AG-1"), agent("AG-2", hardship_trained=True)], [event])
    async with pool.acquire() as conn, conn.transaction():
        await handlers.on_revisit_requested(conn, Envelope(data=p.RevisitRequested(account_id="VUL-1", reason="x"),
                                                           source="/t"))  # fmt: skip
        assert (await repository.case_view(conn, "VUL-1"))["next_action"] == "care_referral"
        await repository.update_case(conn, "VUL-1", next_action="field_visit")
    await plan(pool)
    visits, agents_by_id, cases, _ = await state(pool)
    assert [v["agent_id"] for v in visits] == ["AG-2"]
    assert checked(visits, agents_by_id, cases) == []


async def test_impossible_constraints_are_reported_per_case_not_raised(pool) -> None:
    rng = random.Random(3)
    events = [
        opened("LANG-1", rng, contact={"language": "vi"}),
        opened(
            "FAR-1",
            rng,
            address=p.Address(
                line1="x", city="Shenzhen", country="CN", location=p.GeoPoint(lat=39.9, lon=116.4)
            ),
        ),
        opened("OK-1", rng),
    ]
    await seed(pool, [agent("AG-1")], events)
    outcome = await plan(pool)
    reasons = {u["account_id"]: u["reason"] for u in outcome.unplanned}
    assert "skills" in reasons["LANG-1"]
    assert "nearest qualified agent" in reasons["FAR-1"]
    assert outcome.assigned == 1


async def test_no_lawful_time_on_a_public_holiday_is_a_reason(pool) -> None:
    rng = random.Random(4)
    await seed(pool, [agent("AG-1")], [opened("HOL-1", rng)])
    async with pool.acquire() as conn, conn.transaction():
        outcome = await plan_day(conn, date(2026, 10, 1), "shenzhen", OPTIONS)  # National Day
    assert outcome.assigned == 0
    assert "lawful" in outcome.unplanned[0]["reason"]


async def test_cure_payment_and_dispute_cancel_the_open_visit(pool) -> None:
    rng = random.Random(5)
    await seed(pool, [agent("AG-1")], [opened(f"C{i}", rng) for i in range(3)])
    await plan(pool)
    async with pool.acquire() as conn, conn.transaction():
        await handlers.on_delinquency_cured(conn, Envelope(data=p.DelinquencyCured(
            account_id="C0", as_of=AS_OF, reason="current"), source="/t"))  # fmt: skip
        await handlers.on_payment_received(conn, Envelope(data=p.PaymentReceived(
            account_id="C1", as_of=AS_OF, amount=Decimal(3000), currency="CNY",
            overdue_amount_after=Decimal(0)), source="/t"))  # fmt: skip
        await handlers.on_flags_changed(conn, Envelope(data=p.CustomerFlagsChanged(
            account_id="C2", customer_id="C-C2", flags=p.CustomerFlags(dispute=True), changed=["dispute"]),
            source="/t"))  # fmt: skip
    visits, _, _, outbox = await state(pool)
    assert visits == []
    assert outbox.count("visit.cancelled") == 3


async def test_an_absent_agents_visits_are_reassigned(pool) -> None:
    rng = random.Random(6)
    await seed(pool, [agent("AG-1"), agent("AG-2")], [opened(f"R{i}", rng) for i in range(6)])
    await plan(pool)
    visits, _, _, _ = await state(pool)
    moved = {v["account_id"] for v in visits if v["agent_id"] == "AG-1"}
    assert moved, "both agents had work"
    async with pool.acquire() as conn, conn.transaction():
        await repository.add_absence(conn, "AG-1", PLAN_DATE, "sick")
    outcome = await plan(pool)
    visits, agents_by_id, cases, outbox = await state(pool)
    assert {v["agent_id"] for v in visits} == {"AG-2"}
    assert moved <= {v["account_id"] for v in visits}
    assert outcome.reassigned == len(moved)
    assert outbox.count("visit.cancelled") == len(moved)
    assert checked(visits, agents_by_id, cases) == []


async def test_re_planning_keeps_visits_with_their_agent(pool) -> None:
    rng = random.Random(7)
    await seed(pool, [agent("AG-1"), agent("AG-2")], [opened(f"K{i}", rng) for i in range(6)])
    await plan(pool)
    before = {v["account_id"]: v["agent_id"] for v in (await state(pool))[0]}
    await seed(pool, [], [opened("NEW-1", rng)])
    outcome = await plan(pool)
    after = {v["account_id"]: v["agent_id"] for v in (await state(pool))[0]}
    assert {k: after[k] for k in before} == before
    assert "NEW-1" in after
    assert outcome.assigned == 1


async def test_the_database_refuses_double_booking(pool) -> None:
    rng = random.Random(8)
    await seed(pool, [agent("AG-1")], [opened("D1", rng), opened("D2", rng)])
    await plan(pool)
    visits, *_ = await state(pool)
    first = visits[0]
    async with pool.acquire() as conn:
        inserted = await repository.insert_visit(
            conn, uuid.uuid4(), first["account_id"], "AG-1", PLAN_DATE, 9,
            (first["window_start"], first["window_end"]), (first["planned_start"], first["planned_end"]), uuid.uuid4(),
        )  # fmt: skip
        assert not inserted, "a second open visit for the case"
        other = next(v for v in visits if v["account_id"] != first["account_id"])
        with pytest.raises(asyncpg.ExclusionViolationError):
            await conn.execute(
                "UPDATE visits SET planned_start = $2, planned_end = $3 WHERE visit_id = $1",
                other["visit_id"], first["planned_start"], first["planned_end"],
            )  # fmt: skip


async def test_concurrent_planning_runs_never_double_book(pool) -> None:
    rng = random.Random(9)
    await seed(pool, [agent("AG-1"), agent("AG-2")], [opened(f"P{i}", rng) for i in range(10)])
    outcomes = await asyncio.gather(plan(pool), plan(pool), plan(pool))
    visits, agents_by_id, cases, _ = await state(pool)
    assert len({v["account_id"] for v in visits}) == len(visits)
    assert sum(o.assigned for o in outcomes) == len(visits)
    assert checked(visits, agents_by_id, cases) == []


def updated(account: str, **changes) -> Envelope:
    data = p.DelinquencyUpdated(account_id=account, as_of=AS_OF, outstanding=Decimal(9000),
                                overdue_amount=Decimal(3000), dpd=76, dpd_bucket="61-90", priority_score=5.0,
                                **changes)  # fmt: skip
    return Envelope(data=data, source="/test")


async def assignments(pool) -> list[dict]:
    async with pool.acquire() as conn:
        values = await conn.fetch("SELECT value FROM outbox WHERE topic = $1 ORDER BY id", topics.ASSIGNMENTS)
    return [json.loads(r["value"]) for r in values if json.loads(r["value"])["type"] == "visit.assigned"]


async def test_a_new_address_cancels_the_planned_visit_and_the_next_goes_there(pool) -> None:
    await seed(pool, [agent("AG-1")], [opened("M1", random.Random(7))])
    await plan(pool)
    [first] = await assignments(pool)
    moved = p.Address(line1="9 New Rd", city="Shenzhen", country="CN",
                      location=p.GeoPoint(lat=CENTRE[0] + 0.01, lon=CENTRE[1] - 0.02))  # fmt: skip
    contact = p.ContactDetails(
        name="Test", phone="+8613900000009", language="zh-CN", time_zone="Asia/Shanghai"
    )
    async with pool.acquire() as conn, conn.transaction():
        await handlers.on_delinquency_updated(conn, updated("M1", address=moved, contact=contact))
    visits, _, cases, outbox = await state(pool)
    assert visits == [] and outbox.count("visit.cancelled") == 1, "no agent sent to the old door"
    case = cases["M1"]
    assert (case["address"]["line1"], case["lat"], case["lon"]) == (
        "9 New Rd",
        moved.location.lat,
        moved.location.lon,
    )
    assert case["contact"]["phone"] == "+8613900000009" and case["dpd"] == 76

    await plan(pool)
    [_, again] = await assignments(pool)
    assert first["address"]["line1"] == "1 Rd" and again["address"]["line1"] == "9 New Rd"


async def test_an_update_without_whereabouts_keeps_the_visit_and_the_address(pool) -> None:
    await seed(pool, [agent("AG-1")], [opened("K1", random.Random(8))])
    await plan(pool)
    _, _, before, _ = await state(pool)
    async with pool.acquire() as conn, conn.transaction():
        await handlers.on_delinquency_updated(conn, updated("K1"))
    visits, _, cases, outbox = await state(pool)
    assert len(visits) == 1 and "visit.cancelled" not in outbox
    assert (cases["K1"]["address"], cases["K1"]["contact"], cases["K1"]["lat"]) == (
        before["K1"]["address"], before["K1"]["contact"], before["K1"]["lat"])  # fmt: skip
    assert cases["K1"]["dpd"] == 76
