"""An independent checker of planned visits: it trusts the database rows, not the solver.

Travel is recomputed from coordinates, contact hours are asked of the compliance policy with
the actual agent, shifts and breaks from the agent's own record.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.compliance import Agent, Channel, ContactRequest, Customer, PackCatalog, decide

EARTH_M = 6_371_000.0


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lat2 = math.radians(a[0]), math.radians(b[0])
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    )
    return 2 * EARTH_M * math.asin(math.sqrt(min(1.0, h)))


def check_plan(visits, agents, cases, plan_date: date, *, speed_kmh: float, road_factor: float,
               break_minutes: int) -> list[str]:  # fmt: skip
    """Every violation found, as text; an empty list means the plan is valid."""
    problems: list[str] = []
    catalog = PackCatalog()
    by_agent: dict[str, list] = {}
    for visit in visits:
        by_agent.setdefault(visit["agent_id"], []).append(visit)
    seen_cases: set[str] = set()
    for agent_id, route in by_agent.items():
        agent = agents[agent_id]
        route.sort(key=lambda v: v["planned_start"])
        problems += _check_agent(
            agent, route, cases, plan_date, catalog, speed_kmh, road_factor, break_minutes
        )
        for visit in route:
            if visit["account_id"] in seen_cases:
                problems.append(f"{visit['account_id']}: two open visits")
            seen_cases.add(visit["account_id"])
    return problems


def _travel(a, b, speed_kmh, road_factor) -> timedelta:
    return timedelta(seconds=metres(a, b) * road_factor / (speed_kmh / 3.6))


def _check_agent(agent, route, cases, plan_date, catalog, speed_kmh, road_factor, break_minutes) -> list[str]:
    problems: list[str] = []
    zone = ZoneInfo(agent["time_zone"])
    shift_start = datetime.combine(plan_date, agent["shift_start"], zone)
    shift_end = datetime.combine(plan_date, agent["shift_end"], zone)
    home = (agent["home_lat"], agent["home_lon"])
    if agent["certified_until"] < plan_date:
        problems.append(f"{agent['agent_id']}: certification expired")
    if len(route) > agent["daily_capacity"]:
        problems.append(f"{agent['agent_id']}: over daily capacity")
    where, free_from, gaps = home, shift_start, []
    for visit in route:
        case = cases[visit["account_id"]]
        here = (case["lat"], case["lon"])
        arrival = free_from + _travel(where, here, speed_kmh, road_factor)
        if visit["planned_start"] < arrival - timedelta(seconds=2):
            problems.append(f"{visit['account_id']}: starts before the agent can arrive")
        gaps.append((arrival, visit["planned_start"]))
        problems += _check_visit(agent, visit, case, plan_date, catalog)
        where, free_from = here, visit["planned_end"]
    back = free_from + _travel(where, home, speed_kmh, road_factor)
    if back > shift_end + timedelta(seconds=2):
        problems.append(f"{agent['agent_id']}: home after the shift ends")
    gaps.append((back, shift_end))
    if not _has_break(gaps, shift_start, shift_end, break_minutes):
        problems.append(f"{agent['agent_id']}: no {break_minutes}-minute break around mid-shift")
    return problems


def _check_visit(agent, visit, case, plan_date, catalog) -> list[str]:
    problems = []
    flags, contact = case["flags"], case["contact"]
    if flags.get("vulnerable") and not agent["hardship_trained"]:
        problems.append(f"{visit['account_id']}: vulnerable customer, agent not hardship-trained")
    if contact.get("language", "zh-CN") not in agent["languages"]:
        problems.append(f"{visit['account_id']}: agent does not speak the customer's language")
    customer = Customer(time_zone=contact["time_zone"], dpd=case["dpd"], vulnerable=bool(flags.get("vulnerable")),
                        language=contact.get("language"))  # fmt: skip
    actual = Agent(agent["hardship_trained"], agent["certified_until"], frozenset(agent["languages"]))
    pack = catalog.for_account(case["address"].get("country"))
    for moment in (visit["planned_start"], visit["planned_end"] - timedelta(minutes=1)):
        decision = decide(pack, customer, ContactRequest(Channel.VISIT, moment, agent=actual))
        if not decision.allowed:
            problems.append(f"{visit['account_id']}: visit at {moment} refused by {decision.rule_id}")
    return problems


def _has_break(gaps, shift_start, shift_end, minutes) -> bool:
    """A free stretch of the break's length that starts within two hours of mid-shift."""
    middle = shift_start + (shift_end - shift_start) / 2
    earliest, latest = middle - timedelta(hours=2), middle + timedelta(hours=2)
    need = timedelta(minutes=minutes)
    for start, end in gaps:
        begin = max(start, earliest)
        if begin <= latest and begin + need <= end + timedelta(seconds=2):
            return True
    return False
