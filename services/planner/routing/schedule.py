"""Times of a route: given an agent and the order of its visits, when does each step happen.

Every solver only decides *who visits whom in which order*; this module turns that order into
times, the same way for all of them (and so checks them): travel, waiting for a window to open,
service, and the agent's breaks. A break may be taken anywhere in a leg — on the way or while
waiting — so between two visits there must be room for the travel plus the break, and the break
starts within its window. Visits start as early as allowed; the agent leaves home just in time
for the first one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from services.planner.routing.model import Break, BreakTaken, Job, Stop, Vehicle, Window


@dataclass(frozen=True, slots=True)
class Timeline:
    stops: list[Stop]
    breaks: list[BreakTaken]
    start_s: int
    end_s: int


def timeline(vehicle: Vehicle, jobs: Sequence[Job], legs_s: Sequence[int]) -> Timeline | None:
    """The earliest-finishing schedule of `jobs` in this order, or None if there is none.

    `legs_s` holds the travel seconds of the len(jobs) + 1 legs, home to home.
    """
    breaks = sorted(vehicle.breaks, key=lambda b: b.window)
    best: Timeline | None = None
    # Breaks keep their order along the route; try every placement, keep the earliest return.
    for positions in itertools.combinations_with_replacement(range(len(jobs) + 1), len(breaks)):
        candidate = _simulate(vehicle, jobs, legs_s, list(zip(positions, breaks, strict=True)))
        if candidate is not None and (best is None or candidate.end_s < best.end_s):
            best = candidate
    return None if best is None else _leave_just_in_time(best, legs_s[0])


def _simulate(
    vehicle: Vehicle, jobs: Sequence[Job], legs_s: Sequence[int], placed: list[tuple[int, Break]]
) -> Timeline | None:
    clock = vehicle.shift[0]
    stops: list[Stop] = []
    taken: list[BreakTaken] = []
    for gap, leg in enumerate(legs_s):
        here = [b for position, b in placed if position == gap]
        arrival = _cross_gap(clock, leg, here, gap, taken)
        if arrival is None:
            return None
        if gap == len(jobs):
            return Timeline(stops, taken, vehicle.shift[0], arrival) if arrival <= vehicle.shift[1] else None
        job = jobs[gap]
        start = service_start(arrival, job.windows)
        if start is None:
            return None
        stops.append(Stop(job.id, arrival, start, start + job.service_s))
        clock = start + job.service_s
    return None  # legs_s must have one leg more than jobs


def _cross_gap(clock: int, leg: int, breaks: list[Break], gap: int, taken: list[BreakTaken]) -> int | None:
    """Arrival at the end of a leg that starts at `clock`, taking `breaks` on the way."""
    remaining = leg
    for b in breaks:
        start = max(clock, b.window[0])
        if start > b.window[1]:
            return None
        remaining -= min(remaining, start - clock)  # the part of the leg driven before the break
        clock = start + b.duration_s
        taken.append(BreakTaken(start, b.duration_s, gap))
    return clock + remaining


def service_start(arrival: int, windows: Sequence[Window]) -> int | None:
    """The earliest start within a window at or after `arrival` (None if every window closed)."""
    starts = [max(arrival, open_s) for open_s, close_s in windows if close_s >= max(arrival, open_s)]
    return min(starts) if starts else None


def _leave_just_in_time(plan: Timeline, first_leg_s: int) -> Timeline:
    """Leave home as late as the first visit allows (no break before it: that needs the time)."""
    if not plan.stops or any(b.after_stops == 0 for b in plan.breaks):
        return plan
    first = plan.stops[0]
    leave = max(plan.start_s, first.service_start_s - first_leg_s)
    stops = [
        Stop(first.job_id, leave + first_leg_s, first.service_start_s, first.departure_s),
        *plan.stops[1:],
    ]
    return Timeline(stops, plan.breaks, leave, plan.end_s)
