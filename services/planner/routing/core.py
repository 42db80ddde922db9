"""`solve`: the one code path that plans agents' days (and the Solomon benchmark's routes).

1. normalise the visits' windows; screen out visits nobody could ever take, with the reason;
2. a day small enough is solved whole; a city-sized one per territory (territories.py);
3. the chosen engine orders the visits (engines.py); schedule.py times every route;
4. visits left out are explained: capacity (their agents' days are full) or time.
The whole call keeps to `time_limit_s` of wall-clock time, matrices and all.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from services.planner.routing import engines
from services.planner.routing.instance import Instance, Plan, build
from services.planner.routing.model import (
    Job,
    Reason,
    Route,
    RoutingProblem,
    Solution,
    Unassigned,
    unassigned,
)
from services.planner.routing.schedule import timeline
from services.planner.routing.screening import Screening, screen
from services.planner.routing.territories import Territory, needs_split, territories

DEFAULT_SOLVER = "hybrid"
RESERVE_S = 0.25  # kept back from the engines for building matrices and timing the routes
RESERVE_SHARE = 0.04  # and a share of the budget, for big days where that takes longer


def solve(
    problem: RoutingProblem, solver: str = DEFAULT_SOLVER, time_limit_s: float = 10.0, threads: int = 2
) -> Solution:
    """Route what can be routed within `time_limit_s`; explain every visit left out."""
    if solver not in engines.SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; expected one of {engines.SOLVERS}")
    deadline = time.monotonic() + time_limit_s - RESERVE_S - RESERVE_SHARE * time_limit_s
    problem = replace(problem, jobs=[_normalised(job) for job in problem.jobs])
    screening = screen(problem)
    candidates = [j for j in range(len(problem.jobs)) if j not in screening.reasons]
    if needs_split(problem, candidates):
        parts = territories(problem, screening, candidates)
    else:
        parts = [Territory(list(range(len(problem.vehicles))), candidates, [])]
    routes: list[Route] = []
    ranked_out: list[int] = []
    used: set[str] = set()
    for k, part in enumerate(parts):
        share = _share(parts[k:], deadline)
        part_routes, engine = _solve_part(problem, screening, part, solver, share, threads)
        routes += part_routes
        ranked_out += part.ranked_out
        used.add(engine)
    left_out = _explain(problem, screening, routes, set(ranked_out))
    return Solution(routes, left_out, "/".join(sorted(used)) or solver)


def _normalised(job: Job) -> Job:
    """Windows sorted, overlaps merged, empty ones dropped (solvers want them clean)."""
    merged: list[tuple[int, int]] = []
    for opens, closes in sorted(w for w in job.windows if w[0] <= w[1]):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return replace(job, windows=merged)


def _share(remaining_parts: Sequence[Territory], deadline: float) -> float:
    """This part's slice of the time left, in proportion to its number of visits."""
    left = max(deadline - time.monotonic(), 0.0)
    sizes = [len(part.jobs) for part in remaining_parts]
    total = sum(sizes)
    return left if total == 0 else left * sizes[0] / total


def _solve_part(
    problem: RoutingProblem, screening: Screening, part: Territory, solver: str, seconds: float, threads: int
) -> tuple[list[Route], str]:
    if not part.jobs:
        return [], ""
    started = time.monotonic()
    vehicles = [problem.vehicles[v] for v in part.vehicles]
    jobs = [problem.jobs[j] for j in part.jobs]
    instance = build(problem.travel, vehicles, jobs, screening.allowed[np.ix_(part.vehicles, part.jobs)])
    plan, engine = engines.run(instance, solver, seconds - (time.monotonic() - started), threads)
    return _routes(problem, instance, plan), engine


def _routes(problem: RoutingProblem, instance: Instance, plan: Plan) -> list[Route]:
    routes = []
    for v, order in enumerate(plan):
        route = _timed(problem, instance, v, list(order))
        if route is not None:
            routes.append(route)
    return routes


def _timed(problem: RoutingProblem, instance: Instance, v: int, order: list[int]) -> Route | None:
    vehicle = instance.vehicles[v]
    while order:
        times = timeline(vehicle, [instance.jobs[j] for j in order], instance.legs_s(v, order))
        if times is not None:
            places = [vehicle.start, *(instance.jobs[j].location for j in order), vehicle.home]
            distance = sum(problem.travel.distance(a, b) for a, b in itertools.pairwise(places))
            return Route(vehicle.id, times.stops, times.start_s, times.end_s, sum(instance.legs_s(v, order)),
                         distance, times.breaks)  # fmt: skip
        # The engines work in the same integer model, so this should not happen; if it does,
        # drop the least important visit rather than hand an agent an impossible day.
        order.remove(min(order, key=lambda j: instance.jobs[j].priority))
    return None


def _explain(
    problem: RoutingProblem, screening: Screening, routes: list[Route], ranked_out: set[int]
) -> list[Unassigned]:
    placed = {stop.job_id for route in routes for stop in route.stops}
    load = _loads(problem, routes)
    result = []
    for j, job in enumerate(problem.jobs):
        if j in screening.reasons:
            result.append(unassigned(job.id, screening.reasons[j]))
        elif job.id not in placed:
            full = j in ranked_out or _all_full(problem, screening, load, j)
            result.append(unassigned(job.id, Reason.CAPACITY if full else Reason.TIME))
    return result


def _loads(problem: RoutingProblem, routes: list[Route]) -> dict[str, tuple[int, int]]:
    demand = {job.id: job.demand for job in problem.jobs}
    return {
        route.vehicle_id: (len(route.stops), sum(demand[s.job_id] for s in route.stops)) for route in routes
    }


def _all_full(
    problem: RoutingProblem, screening: Screening, load: dict[str, tuple[int, int]], j: int
) -> bool:
    """True when every agent who could take visit j has no visit or load left to give it."""
    job = problem.jobs[j]
    for v in np.flatnonzero(screening.allowed[:, j]):
        vehicle = problem.vehicles[v]
        visits, carried = load.get(vehicle.id, (0, 0))
        room_for_visit = vehicle.max_jobs is None or visits < vehicle.max_jobs
        room_for_load = vehicle.capacity is None or carried + job.demand <= vehicle.capacity
        if room_for_visit and room_for_load:
            return False
    return True
