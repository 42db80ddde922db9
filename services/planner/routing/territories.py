"""Cutting a city day into territories small enough to solve well.

A day of 10,000 open cases and 200 agents is one matrix of 10,400² — too big to build, let
alone search, in a minute. Agents are split into groups of neighbours (recursive bisection of
their start points along the wider axis: balanced, deterministic); each case goes to the group
of the qualified agent who starts closest to it; a group keeps the cases it could plausibly
serve — by priority, then nearness — a few times its capacity in visits, and the rest are
ranked out. Groups are then solved one after another on the full budget of threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.planner.routing.model import RoutingProblem, Vehicle
from services.planner.routing.screening import Screening

AGENTS_PER_TERRITORY = 10
CANDIDATES_PER_VISIT = 2.5  # cases kept per visit a territory's agents can make
DECOMPOSE_ABOVE = 1000  # candidate visits; smaller days are solved whole


@dataclass(frozen=True, slots=True)
class Territory:
    vehicles: list[int]
    jobs: list[int]  # kept, best first
    ranked_out: list[int]


def needs_split(problem: RoutingProblem, candidates: Sequence[int]) -> bool:
    return len(candidates) > DECOMPOSE_ABOVE and len(problem.vehicles) > AGENTS_PER_TERRITORY


def territories(problem: RoutingProblem, screening: Screening, candidates: Sequence[int]) -> list[Territory]:
    groups = agent_groups(problem.vehicles, AGENTS_PER_TERRITORY)
    group_of = np.empty(len(problem.vehicles), dtype=int)
    for g, members in enumerate(groups):
        group_of[members] = g
    # The nearest qualified start: a large number where the agent may not take the case.
    reach = np.where(screening.allowed, screening.to_job_s, np.iinfo(np.int64).max)
    nearest = reach.argmin(axis=0)
    buckets: list[list[int]] = [[] for _ in groups]
    for j in candidates:
        buckets[group_of[nearest[j]]].append(j)
    return [_rank(problem, members, jobs, reach) for members, jobs in zip(groups, buckets, strict=True)]


def _rank(problem: RoutingProblem, members: list[int], jobs: list[int], reach: np.ndarray) -> Territory:
    closest = reach[members].min(axis=0)
    ordered = sorted(jobs, key=lambda j: (-problem.jobs[j].priority, int(closest[j])))
    slots = sum(_slots(problem.vehicles[v], len(jobs)) for v in members)
    keep = math.ceil(CANDIDATES_PER_VISIT * slots)
    return Territory(members, ordered[:keep], ordered[keep:])


def _slots(vehicle: Vehicle, fallback: int) -> int:
    return vehicle.max_jobs if vehicle.max_jobs is not None else fallback


def agent_groups(vehicles: Sequence[Vehicle], size: int) -> list[list[int]]:
    """Groups of at most `size` agents whose start points are close together."""
    points = np.array([[v.start.lat, v.start.lon] for v in vehicles], dtype=float)
    # Degrees of longitude shrink with latitude; compare the axes in comparable units.
    points[:, 1] *= math.cos(math.radians(float(points[:, 0].mean()))) if len(points) else 1.0
    return _bisect(list(range(len(vehicles))), points, size)


def _bisect(members: list[int], points: np.ndarray, size: int) -> list[list[int]]:
    if len(members) <= size:
        return [members]
    here = points[members]
    axis = int(np.argmax(here.max(axis=0) - here.min(axis=0)))
    ordered = [members[i] for i in np.argsort(here[:, axis], kind="stable")]
    # Split so both halves hold whole groups: balanced sizes, none over `size`.
    groups = math.ceil(len(members) / size)
    cut = round(len(members) * (groups // 2) / groups)
    return _bisect(ordered[:cut], points, size) + _bisect(ordered[cut:], points, size)
