"""The console's own projection of the event streams: the day's funnel and the routes.

Pure: `apply(event)` with decoded envelopes, no I/O. Built from the topics themselves (the
console reads no service's schema), kept in memory for the last few days and rebuilt from
the log at start-up. Days are the operations team's calendar days (`time_zone`).

Funnel stages, counted over a day's events:
  delinquent — accounts with delinquency.opened/updated; planned — visits assigned;
  visited — visits with an accepted check-in or an outcome; outcomes — outcomes recorded;
  follow-ups — follow-up facts (SMS, calls, care referrals, promises).
Recovery: paid on site and partial payments (collected), promises to pay (promised), and
payments core banking reported (received), each per currency.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from shared.events import Envelope
from shared.events import payloads as p

NO_CURRENCY = "n/a"
COORDINATE_DECIMALS = 3  # about 100 m: enough to see a route, not to find a door


@dataclass
class DayFunnel:
    day: date
    delinquent: set[int] = field(default_factory=set)
    opened: int = 0
    overdue_opened: dict[str, Decimal] = field(default_factory=lambda: collections.defaultdict(Decimal))
    planned: set[int] = field(default_factory=set)
    cancelled: int = 0
    visited: set[int] = field(default_factory=set)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    followups: collections.Counter[str] = field(default_factory=collections.Counter)
    collected: dict[str, Decimal] = field(default_factory=lambda: collections.defaultdict(Decimal))
    promised: dict[str, Decimal] = field(default_factory=lambda: collections.defaultdict(Decimal))
    received: dict[str, Decimal] = field(default_factory=lambda: collections.defaultdict(Decimal))

    def to_json(self) -> dict[str, Any]:
        outcomes = sum(self.outcomes.values())
        followups = sum(self.followups.values())
        return {
            "day": self.day.isoformat(),
            "stages": [
                {"stage": "delinquent", "count": len(self.delinquent)},
                {"stage": "planned", "count": len(self.planned)},
                {"stage": "visited", "count": len(self.visited)},
                {"stage": "outcomes", "count": outcomes},
                {"stage": "follow-ups", "count": followups},
            ],
            "opened": self.opened,
            "cancelled": self.cancelled,
            "outcomes_by_kind": dict(self.outcomes.most_common()),
            "followups_by_type": dict(self.followups.most_common()),
            "amounts": {
                "overdue_opened": _money(self.overdue_opened),
                "collected_on_site": _money(self.collected),
                "promised": _money(self.promised),
                "payments_received": _money(self.received),
            },
        }


@dataclass
class RouteStop:
    visit_id: str
    agent_id: str
    plan_date: date
    sequence: int
    lat: float | None
    lon: float | None
    window_start: datetime
    status: str = "planned"
    outcome: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "visit_id": self.visit_id,
            "sequence": self.sequence,
            "lat": self.lat,
            "lon": self.lon,
            "window_start": self.window_start.isoformat(),
            "status": self.status,
            "outcome": self.outcome,
        }


class Projection:
    """Funnel per day and route stops per plan date, for the last `days_kept` days."""

    def __init__(self, time_zone: str = "UTC", days_kept: int = 2) -> None:
        self.tz = ZoneInfo(time_zone)
        self.days_kept = days_kept
        self.days: dict[date, DayFunnel] = {}
        self.stops: dict[str, RouteStop] = {}
        self.applied = 0

    def today(self, now: datetime | None = None) -> date:
        return (now or datetime.now(self.tz)).astimezone(self.tz).date()

    def apply(self, event: Envelope) -> None:
        day = self._day(event.time)
        data = event.data
        self.applied += 1
        account = hash(data.account_id)
        if isinstance(data, p.DelinquencyOpened):
            day.delinquent.add(account)
            day.opened += 1
            day.overdue_opened[data.currency] += data.overdue_amount
        elif isinstance(data, p.DelinquencyUpdated):
            day.delinquent.add(account)
        elif isinstance(data, p.PaymentReceived):
            day.received[data.currency] += data.amount
        elif isinstance(data, p.VisitAssigned):
            day.planned.add(hash(str(data.visit_id)))
            self._assign(data)
        elif isinstance(data, p.VisitRescheduled):
            self._reschedule(data)
        elif isinstance(data, p.VisitCancelled):
            day.cancelled += 1
            self._set_status(str(data.visit_id), "cancelled")
        elif isinstance(data, p.VisitCheckedIn):
            if data.accepted:
                day.visited.add(hash(str(data.visit_id)))
            self._set_status(str(data.visit_id), "checked_in" if data.accepted else "check_in_refused")
        elif isinstance(data, p.VisitOutcomeRecorded):
            self._outcome(day, data)
        elif isinstance(data, p.FollowupPayload):
            day.followups[data.type] += 1  # type: ignore[attr-defined]

    def funnel(self, day: date | None = None) -> dict[str, Any]:
        day = day or self.today()
        return self.days.get(day, DayFunnel(day)).to_json()

    def plan_dates(self) -> list[date]:
        return sorted({s.plan_date for s in self.stops.values()})

    def routes(self, plan_date: date) -> dict[str, Any]:
        by_agent: dict[str, list[RouteStop]] = collections.defaultdict(list)
        for stop in self.stops.values():
            if stop.plan_date == plan_date:
                by_agent[stop.agent_id].append(stop)
        agents = [
            {
                "agent_id": agent,
                "stops": [s.to_json() for s in sorted(stops, key=lambda s: (s.sequence, s.window_start))],
            }
            for agent, stops in sorted(by_agent.items())
        ]
        return {"plan_date": plan_date.isoformat(), "agents": agents}

    def default_plan_date(self) -> date:
        """Today when it has routes, else the nearest plan date that has some."""
        today = self.today()
        dates = self.plan_dates()
        if not dates or today in dates:
            return today
        return min(dates, key=lambda d: (abs((d - today).days), d < today))

    def evict(self, now: datetime | None = None) -> None:
        """Forget days (and plan dates) older than the window."""
        oldest = self.today(now) - timedelta(days=self.days_kept)
        for day in [d for d in self.days if d < oldest]:
            del self.days[day]
        for visit_id in [v for v, s in self.stops.items() if s.plan_date < oldest]:
            del self.stops[visit_id]

    def _day(self, when: datetime) -> DayFunnel:
        day = when.astimezone(self.tz).date()
        funnel = self.days.get(day)
        if funnel is None:
            funnel = self.days[day] = DayFunnel(day)
        return funnel

    def _assign(self, data: p.VisitAssigned) -> None:
        location = data.address.location
        self.stops[str(data.visit_id)] = RouteStop(
            visit_id=str(data.visit_id),
            agent_id=data.agent_id,
            plan_date=data.plan_date,
            sequence=data.sequence,
            lat=round(location.lat, COORDINATE_DECIMALS) if location else None,
            lon=round(location.lon, COORDINATE_DECIMALS) if location else None,
            window_start=data.window_start,
        )

    def _reschedule(self, data: p.VisitRescheduled) -> None:
        stop = self.stops.get(str(data.visit_id))
        if stop is not None:
            stop.plan_date, stop.sequence, stop.window_start = (
                data.plan_date,
                data.sequence,
                data.window_start,
            )
            stop.agent_id = data.agent_id

    def _set_status(self, visit_id: str, status: str) -> None:
        stop = self.stops.get(visit_id)
        if stop is not None and stop.status != "visited":
            stop.status = status

    def _outcome(self, day: DayFunnel, data: p.VisitOutcomeRecorded) -> None:
        outcome = data.outcome
        day.outcomes[outcome.kind] += 1
        day.visited.add(hash(str(data.visit_id)))
        currency = data.currency or NO_CURRENCY
        if isinstance(outcome, p.PaidOnSite | p.PartialPayment):
            day.collected[currency] += outcome.amount
        elif isinstance(outcome, p.PromiseToPay):
            day.promised[currency] += outcome.amount
        stop = self.stops.get(str(data.visit_id))
        if stop is not None:
            stop.status, stop.outcome = "visited", outcome.kind


def _money(amounts: dict[str, Decimal]) -> dict[str, str]:
    return {currency: str(amount.quantize(Decimal("0.01"))) for currency, amount in sorted(amounts.items())}
