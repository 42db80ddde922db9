"""Property: no visit the planner schedules violates the contact policy.

Random customers across countries (rule packs), time zones with DST and next to the date
line, dates around DST changes and holidays, vulnerable or not: the planner's own window
builder and routing place the visits, and `decide` is asked, independently, at each visit's
start and last minute with the agent who got it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.planner import planning
from services.planner import routing as r
from shared.compliance import Agent, Channel, ContactRequest, Customer, PackCatalog, decide

CATALOG = PackCatalog()
COUNTRIES = {
    "CN": ["Asia/Shanghai", "Asia/Urumqi"],
    "US": ["America/New_York", "America/Los_Angeles", "Pacific/Honolulu", "America/Anchorage"],
    "GB": ["Europe/London"],
    "IE": ["Europe/Dublin"],
    "IN": ["Asia/Kolkata"],
    "ID": ["Asia/Jakarta", "Asia/Jayapura"],
    "PH": ["Asia/Manila"],
    "VN": ["Asia/Ho_Chi_Minh"],
    "KI": ["Pacific/Kiritimati"],
    "WS": ["Pacific/Apia"],
    "AS": ["Pacific/Pago_Pago"],
    "TO": ["Pacific/Tongatapu"],
    "AU": ["Australia/Lord_Howe"],
}
DATES = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 1), date(2026, 10, 1),
         date(2026, 12, 25), date(2026, 8, 17), date(2026, 3, 17), date(2026, 6, 10)]  # fmt: skip


@st.composite
def cases(draw: st.DrawFn) -> dict:
    country = draw(st.sampled_from(sorted(COUNTRIES)))
    return {
        "account_id": f"A{draw(st.integers(0, 10**6))}",
        "lat": 10 + draw(st.floats(-0.05, 0.05)),
        "lon": 100 + draw(st.floats(-0.05, 0.05)),
        "dpd": draw(st.sampled_from([5, 40, 75, 200])),
        "priority_score": 5.0,
        "flags": {"vulnerable": draw(st.booleans())},
        "contact": {"time_zone": draw(st.sampled_from(COUNTRIES[country])), "language": "zh-CN"},
        "address": {"country": country},
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(cases(), min_size=1, max_size=4, unique_by=lambda c: c["account_id"]), st.sampled_from(DATES))
def test_every_planned_visit_is_allowed_by_the_policy(rows: list[dict], plan_date: date) -> None:
    epoch = planning._epoch(plan_date)
    options = planning.PlanOptions(time_limit_s=0.5)
    agent_row = {
        "agent_id": "AG", "time_zone": "UTC", "shift_start": time(0), "shift_end": time(23, 59), "home_lat": 10.0,
        "home_lon": 100.0, "daily_capacity": 10, "languages": ["zh-CN"], "hardship_trained": True,
    }  # fmt: skip
    # Two days of shift in UTC so every zone's local plan date is reachable.
    vehicle = planning._vehicle(agent_row, plan_date - timedelta(days=1), epoch, options)
    vehicle = r.Vehicle(vehicle.id, vehicle.start, vehicle.end, (vehicle.shift[0], vehicle.shift[0] + 3 * 86400),
                        vehicle.max_jobs, vehicle.skills, ())  # fmt: skip
    jobs = [planning._job(row, plan_date, epoch, options) for row in rows]
    solution = r.solve(r.RoutingProblem([vehicle], jobs, r.HaversineTravel()), time_limit_s=0.5)
    agent = Agent(hardship_trained=True, certification_valid_until=plan_date + timedelta(days=1),
                  languages=frozenset({"zh-CN"}))  # fmt: skip
    by_id = {planning._job_id(row): row for row in rows}
    for route in solution.routes:
        for stop in route.stops:
            row = by_id[stop.job_id]
            customer = Customer(time_zone=row["contact"]["time_zone"], dpd=row["dpd"],
                                vulnerable=row["flags"]["vulnerable"], language="zh-CN")  # fmt: skip
            pack = CATALOG.for_account(row["address"]["country"])
            for moment in (stop.service_start_s, stop.departure_s - 60):
                at = epoch + timedelta(seconds=moment)
                decision = decide(pack, customer, ContactRequest(Channel.VISIT, at, agent=agent))
                assert decision.allowed, (row, at, decision)
    placed = {s.job_id for route in solution.routes for s in route.stops}
    for unassigned in solution.unassigned:
        assert unassigned.job_id not in placed
        assert unassigned.reason


def test_the_epoch_leaves_room_for_every_zone() -> None:
    epoch = planning._epoch(date(2026, 12, 31))
    assert epoch <= datetime(2026, 12, 30, 10, tzinfo=UTC)
