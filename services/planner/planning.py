"""Plan a region's day: choose the cases to visit and route every available agent.

One code path for the first plan and every re-plan. Visits already planned for the day stay
with their agent (pinned by a per-agent skill) but may be re-sequenced; visits of an agent
who became unavailable are re-assigned; cases the strategy sends to the door fill the
remaining capacity by priority. The routing is the solver's; the database's unique index and
exclusion constraint have the last word on double-booking, whatever runs concurrently.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.planner import repository
from services.planner import routing as r
from services.planner.contact_hours import legal_visit_windows
from shared.compliance import PackCatalog
from shared.events import Envelope
from shared.events import payloads as p
from shared.events.envelope import child_traceparent
from shared.outbox import enqueue

SOURCE = "/fieldcollect/planner"


@dataclass(frozen=True)
class PlanOptions:
    visit_minutes: int = 25
    travel_speed_kmh: float = 25.0
    road_factor: float = 1.35
    break_minutes: int = 45
    solver: str = "vroom"
    time_limit_s: float = 10.0
    compliance: PackCatalog = field(default_factory=PackCatalog)


@dataclass
class PlanOutcome:
    plan_id: uuid.UUID
    plan_date: date
    region: str
    events: list[p.Payload] = field(default_factory=list)
    assigned: int = 0
    rescheduled: int = 0
    reassigned: int = 0
    cancelled: int = 0
    kept: int = 0
    unplanned: list[dict[str, str]] = field(default_factory=list)
    routes: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "plan_id": str(self.plan_id),
            "plan_date": self.plan_date.isoformat(),
            "region": self.region,
            "assigned": self.assigned,
            "rescheduled": self.rescheduled,
            "reassigned": self.reassigned,
            "cancelled": self.cancelled,
            "kept": self.kept,
            "visits_per_agent": {agent: len(stops) for agent, stops in self.routes.items()},
            "unplanned": self.unplanned,
        }


async def plan_day(
    conn: asyncpg.Connection,
    plan_date: date,
    region: str,
    options: PlanOptions,
    cause: Envelope | None = None,
) -> PlanOutcome:
    """Plan (or re-plan) one region's day inside the caller's transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"plan:{region}:{plan_date}")
    agents = await repository.available_agents(conn, plan_date, region)
    planned = await repository.planned_visits(conn, plan_date, region)
    teams = {a["agent_id"]: a["team"] for a in agents}
    pinned = [v for v in planned if v["agent_id"] in teams]
    orphaned = [v for v in planned if v["agent_id"] not in teams]
    room = max(sum(a["daily_capacity"] for a in agents) * 2 - len(planned), 0)
    candidates = await repository.cases_to_visit(conn, region, room) if room else []
    epoch = _epoch(plan_date)
    problem = r.RoutingProblem(
        vehicles=[_vehicle(a, plan_date, epoch, options) for a in agents],
        jobs=[*(_job(v, plan_date, epoch, options, pin=v["agent_id"]) for v in pinned),
              *(_job(v, plan_date, epoch, options) for v in orphaned),
              *(_job(c, plan_date, epoch, options) for c in candidates)],
        travel=r.HaversineTravel(speed_kmh=options.travel_speed_kmh, road_factor=options.road_factor),
    )  # fmt: skip
    solution = r.solve(problem, solver=options.solver, time_limit_s=options.time_limit_s)
    outcome = PlanOutcome(uuid.uuid4(), plan_date, region)
    rows = {_job_id(row): row for row in [*pinned, *orphaned, *candidates]}
    await repository.release_slots(conn, [v["visit_id"] for v in pinned])
    for route in solution.routes:
        for sequence, stop in enumerate(route.stops):
            await _apply_stop(
                conn, outcome, rows[stop.job_id], (route.vehicle_id, teams[route.vehicle_id]), sequence, stop,
                epoch, plan_date,
            )  # fmt: skip
        outcome.routes[route.vehicle_id] = [stop.job_id for stop in route.stops]
    for unassigned in solution.unassigned:
        await _apply_unassigned(conn, outcome, rows[unassigned.job_id], unassigned.reason)
    await repository.save_plan(conn, outcome.plan_id, plan_date, region, options.solver, outcome.summary())
    causes = {row["account_id"]: row for row in rows.values()}
    await enqueue(conn, *(_envelope(e, cause, causes.get(e.account_id)) for e in outcome.events))
    return outcome


def _envelope(event: p.Payload, cause: Envelope | None, case: asyncpg.Record | None) -> Envelope:
    """A plan's events continue the trace of what sent each case to the door."""
    if cause is not None:
        return cause.caused(event, SOURCE)
    if case is not None and case["cause_event_id"] is not None:
        return Envelope(
            data=event,
            source=SOURCE,
            correlation_id=case["cause_correlation_id"],
            causation_id=str(case["cause_event_id"]),
            traceparent=child_traceparent(case["cause_traceparent"]),
        )
    return Envelope(data=event, source=SOURCE)


def _epoch(plan_date: date) -> datetime:
    """Seconds in the routing model count from the plan date's UTC midnight, minus a day of
    margin so that every zone's morning (UTC+14 included) is a positive number."""
    return datetime.combine(plan_date, time(0), UTC) - timedelta(days=1)


def _seconds(moment: datetime, epoch: datetime) -> int:
    return int((moment - epoch).total_seconds())


def _job_id(row: asyncpg.Record) -> str:
    return str(row["visit_id"]) if "visit_id" in row.keys() else f"case:{row['account_id']}"  # noqa: SIM118


def _vehicle(agent: asyncpg.Record, plan_date: date, epoch: datetime, options: PlanOptions) -> r.Vehicle:
    zone = ZoneInfo(agent["time_zone"])
    start = datetime.combine(plan_date, agent["shift_start"], zone)
    end = datetime.combine(plan_date, agent["shift_end"], zone)
    middle = start + (end - start) / 2
    home = r.Location(lat=agent["home_lat"], lon=agent["home_lon"])
    return r.Vehicle(
        id=agent["agent_id"],
        start=home,
        end=home,
        shift=(_seconds(start, epoch), _seconds(end, epoch)),
        max_jobs=agent["daily_capacity"],
        skills=frozenset(
            {f"agent:{agent['agent_id']}", *(f"lang:{lang}" for lang in agent["languages"])}
            | ({"hardship"} if agent["hardship_trained"] else set())
        ),
        breaks=[r.Break(window=(_seconds(middle - timedelta(hours=2), epoch),
                                _seconds(middle + timedelta(hours=2), epoch)),
                        duration_s=options.break_minutes * 60)],
    )  # fmt: skip


def _job(
    row: asyncpg.Record, plan_date: date, epoch: datetime, options: PlanOptions, pin: str | None = None
) -> r.Job:
    contact, flags = row["contact"], row["flags"]
    windows = legal_visit_windows(options.compliance, row, plan_date)
    skills = {f"lang:{contact.get('language', 'zh-CN')}"}
    if flags.get("vulnerable"):
        skills.add("hardship")
    if pin:
        skills.add(f"agent:{pin}")
    return r.Job(
        id=_job_id(row),
        location=r.Location(lat=row["lat"], lon=row["lon"]),
        service_s=options.visit_minutes * 60,
        windows=_service_start_windows(windows, epoch, options.visit_minutes * 60),
        priority=100 if pin else _priority(row["priority_score"]),
        skills=frozenset(skills),
    )


def _service_start_windows(
    windows: list[tuple[datetime, datetime]], epoch: datetime, service_s: int
) -> list[tuple[int, int]]:
    """The solver's windows bound the start of service: the whole visit must fit the lawful time."""
    starts = [(_seconds(start, epoch), _seconds(end, epoch) - service_s) for start, end in windows]
    return [(start, latest) for start, latest in starts if latest >= start]


def _priority(score: float) -> int:
    """Solver priority 1–99 from the case score (pinned visits get 100: keep them)."""
    return max(1, min(99, int(score * 10)))


async def _apply_stop(
    conn: asyncpg.Connection,
    outcome: PlanOutcome,
    row: asyncpg.Record,
    agent: tuple[str, str | None],
    sequence: int,
    stop: r.Stop,
    epoch: datetime,
    plan_date: date,
) -> None:
    agent_id = agent[0]
    slot = (epoch + timedelta(seconds=stop.service_start_s), epoch + timedelta(seconds=stop.departure_s))
    is_visit = "visit_id" in row.keys()  # noqa: SIM118
    if is_visit and row["agent_id"] == agent_id:
        await repository.schedule_visit(conn, row["visit_id"], sequence, slot, outcome.plan_id)
        if (row["sequence"], row["planned_start"], row["planned_end"]) == (sequence, *slot):
            outcome.kept += 1
            return
        outcome.rescheduled += 1
        outcome.events.append(
            p.VisitRescheduled(
                account_id=row["account_id"], visit_id=row["visit_id"], agent_id=agent_id, plan_date=plan_date,
                sequence=sequence, window_start=slot[0], window_end=slot[1],
            )
        )  # fmt: skip
        return
    if is_visit:
        await _cancel(conn, outcome, row, "agent unavailable: reassigned")
        outcome.reassigned += 1
    visit_id = uuid.uuid4()
    inserted = await repository.insert_visit(
        conn, visit_id, row["account_id"], agent_id, plan_date, sequence, slot, slot, outcome.plan_id
    )
    if not inserted:
        outcome.unplanned.append({"account_id": row["account_id"], "reason": "refused by the database: "
                                  "the case already has an open visit or the agent is busy then"})  # fmt: skip
        return
    outcome.assigned += 1
    outcome.events.append(_assigned(row, visit_id, agent, plan_date, sequence, slot))


async def _apply_unassigned(
    conn: asyncpg.Connection, outcome: PlanOutcome, row: asyncpg.Record, reason: str
) -> None:
    if "visit_id" in row.keys():  # noqa: SIM118
        await _cancel(conn, outcome, row, f"no longer fits the plan: {reason}")
    outcome.unplanned.append({"account_id": row["account_id"], "reason": reason})


async def _cancel(conn: asyncpg.Connection, outcome: PlanOutcome, row: asyncpg.Record, reason: str) -> None:
    await repository.cancel_visit_by_id(conn, row["visit_id"])
    outcome.cancelled += 1
    outcome.events.append(
        p.VisitCancelled(
            account_id=row["account_id"], visit_id=row["visit_id"], agent_id=row["agent_id"], reason=reason
        )
    )


def _assigned(
    row: asyncpg.Record, visit_id: uuid.UUID, agent: tuple[str, str | None], plan_date: date, sequence: int,
    slot: tuple[datetime, datetime],
) -> p.VisitAssigned:  # fmt: skip
    contact = row["contact"]
    return p.VisitAssigned(
        account_id=row["account_id"],
        visit_id=visit_id,
        agent_id=agent[0],
        team=agent[1],
        plan_date=plan_date,
        sequence=sequence,
        window_start=slot[0],
        window_end=slot[1],
        address=p.Address.model_validate(row["address"]),
        time_zone=contact["time_zone"],
        language=contact.get("language", "zh-CN"),
        customer_name=contact.get("name"),
        briefing=p.Briefing(
            currency=row["currency"],
            overdue_amount=Decimal(row["overdue_amount"]),
            outstanding=Decimal(row["outstanding"]),
            dpd=row["dpd"],
            dpd_bucket=row["dpd_bucket"],
            prior_contacts=row["prior_contacts"],
            notes=_notes(row),
        ),
    )


def _notes(row: asyncpg.Record) -> str:
    notes = [f"Why a visit: {row['next_action_rule'] or 'revisit'}."]
    if row["flags"].get("vulnerable"):
        notes.append("Customer may be vulnerable: listen first, offer the care programme, no pressure.")
    return " ".join(notes)
