"""The console's projection: the day's funnel, recovery amounts and routes, from events."""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.ops.projection import Projection
from shared.events import Envelope
from shared.events import payloads as p

TODAY = date(2026, 11, 29)
NOON = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def _at(data: p.Payload, when: datetime = NOON) -> Envelope:
    return Envelope(data=data, source="/test", time=when)


def _opened(account: str, overdue: str = "100.00") -> p.DelinquencyOpened:
    return p.DelinquencyOpened(
        account_id=account,
        customer_id="C-1",
        product="cash_loan",
        currency="CNY",
        as_of=TODAY,
        principal=Decimal("1000"),
        outstanding=Decimal("900"),
        overdue_amount=Decimal(overdue),
        dpd=12,
        dpd_bucket="1-29",
        contact=p.ContactDetails(name="Someone", phone="+8613800000000"),
        address=p.Address(line1="1 Road", city="Shenzhen", country="CN"),
    )


def _assigned(
    account: str, visit_id: uuid.UUID, agent: str, sequence: int, lat: float = 22.54321
) -> p.VisitAssigned:
    start = NOON + timedelta(hours=sequence)
    return p.VisitAssigned(
        account_id=account,
        visit_id=visit_id,
        agent_id=agent,
        plan_date=TODAY,
        sequence=sequence,
        window_start=start,
        window_end=start + timedelta(hours=1),
        address=p.Address(
            line1="1 Road", city="Shenzhen", country="CN", location=p.GeoPoint(lat=lat, lon=114.05678)
        ),
        time_zone="Asia/Shanghai",
        language="zh-CN",
        briefing=p.Briefing(),
    )


def _outcome(account: str, visit_id: uuid.UUID, outcome: object) -> p.VisitOutcomeRecorded:
    return p.VisitOutcomeRecorded(
        account_id=account,
        visit_id=visit_id,
        agent_id="AG-1",
        outcome_id=uuid.uuid4(),
        recorded_at=NOON,
        outcome=outcome,
        currency="CNY",
    )


def _stages(funnel: dict) -> dict[str, int]:
    return {s["stage"]: s["count"] for s in funnel["stages"]}


def test_the_funnel_counts_each_stage_of_the_day_with_recovery_amounts() -> None:
    projection = Projection("Asia/Shanghai")
    visits = [uuid.uuid4() for _ in range(3)]
    for n, account in enumerate(["A1", "A2", "A3", "A4"]):
        projection.apply(_at(_opened(account, f"{100 * (n + 1)}.00")))
    projection.apply(
        _at(
            p.DelinquencyUpdated(
                account_id="A1",
                as_of=TODAY,
                outstanding=Decimal(1),
                overdue_amount=Decimal(1),
                dpd=13,
                dpd_bucket="1-29",
            )
        )
    )
    for n, (account, visit) in enumerate(zip(["A1", "A2", "A3"], visits, strict=True)):
        projection.apply(_at(_assigned(account, visit, "AG-1", n)))
    projection.apply(
        _at(_outcome("A1", visits[0], p.PaidOnSite(amount=Decimal("50.00"), receipt_number="R1")))
    )
    projection.apply(
        _at(_outcome("A2", visits[1], p.PromiseToPay(amount=Decimal("70.00"), promised_date=TODAY)))
    )
    projection.apply(
        _at(
            p.PaymentReceived(
                account_id="A4",
                as_of=TODAY,
                amount=Decimal("20.00"),
                currency="CNY",
                overdue_amount_after=Decimal(0),
            )
        )
    )
    projection.apply(_at(p.RevisitRequested(account_id="A2", reason="promise broken")))

    funnel = projection.funnel(TODAY)

    assert _stages(funnel) == {"delinquent": 4, "planned": 3, "visited": 2, "outcomes": 2, "follow-ups": 1}
    assert funnel["amounts"] == {
        "overdue_opened": {"CNY": "1000.00"},
        "collected_on_site": {"CNY": "50.00"},
        "promised": {"CNY": "70.00"},
        "payments_received": {"CNY": "20.00"},
    }
    assert funnel["outcomes_by_kind"] == {"paid_on_site": 1, "promise_to_pay": 1}


def test_days_are_the_operations_teams_calendar_days() -> None:
    projection = Projection("Asia/Shanghai")
    late_evening_utc = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)  # 01:00 on the 29th in Shanghai
    projection.apply(_at(_opened("A1"), late_evening_utc))
    assert _stages(projection.funnel(TODAY))["delinquent"] == 1
    assert _stages(projection.funnel(TODAY - timedelta(days=1)))["delinquent"] == 0


def test_routes_are_per_agent_in_sequence_with_coarse_coordinates_and_status() -> None:
    projection = Projection("Asia/Shanghai")
    v1, v2, v3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    projection.apply(_at(_assigned("A2", v2, "AG-1", 2)))
    projection.apply(_at(_assigned("A1", v1, "AG-1", 1)))
    projection.apply(_at(_assigned("A3", v3, "AG-2", 1)))
    projection.apply(_at(_outcome("A1", v1, p.CustomerAbsent())))
    projection.apply(_at(p.VisitCancelled(account_id="A3", visit_id=v3, agent_id="AG-2", reason="care hold")))

    routes = projection.routes(TODAY)

    by_agent = {a["agent_id"]: a["stops"] for a in routes["agents"]}
    assert [s["visit_id"] for s in by_agent["AG-1"]] == [str(v1), str(v2)]
    assert [s["status"] for s in by_agent["AG-1"]] == ["visited", "planned"]
    assert by_agent["AG-1"][0]["outcome"] == "customer_absent"
    assert by_agent["AG-2"][0]["status"] == "cancelled"
    assert by_agent["AG-1"][0]["lat"] == 22.543 and by_agent["AG-1"][0]["lon"] == 114.057
    assert "account" not in str(routes) and "A1" not in str(routes), "routes carry no account ids"


def test_a_rescheduled_visit_moves_to_its_new_day_and_the_default_date_is_the_nearest() -> None:
    projection = Projection("Asia/Shanghai")
    visit = uuid.uuid4()
    projection.apply(_at(_assigned("A1", visit, "AG-1", 0)))
    tomorrow = TODAY + timedelta(days=1)
    projection.apply(
        _at(
            p.VisitRescheduled(
                account_id="A1",
                visit_id=visit,
                agent_id="AG-1",
                plan_date=tomorrow,
                sequence=3,
                window_start=NOON + timedelta(days=1),
                window_end=NOON + timedelta(days=1, hours=1),
            )
        )
    )
    assert projection.routes(TODAY)["agents"] == []
    assert projection.routes(tomorrow)["agents"][0]["stops"][0]["sequence"] == 3
    assert projection.plan_dates() == [tomorrow]


def test_old_days_are_evicted() -> None:
    projection = Projection("Asia/Shanghai", days_kept=1)
    projection.apply(_at(_opened("A1"), NOON - timedelta(days=3)))
    projection.apply(_at(_opened("A2"), NOON))
    projection.evict(now=NOON)
    assert sorted(projection.days) == [TODAY]
