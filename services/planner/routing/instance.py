"""What a solver engine sees: a set of agents and visits with their integer matrices.

Points are laid out as each distinct place where agents start or end (25 Solomon vehicles
share one depot point, not fifty — VROOM picks its heuristics by whether agents share places,
and OR-Tools moves faster on fewer nodes), then every visit. A plan is, per agent, the order of
its visits (local indices).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.planner.routing.model import Job, Vehicle
from services.planner.routing.travel import Location, Travel

Plan = list[list[int]]


@dataclass(frozen=True, slots=True)
class Instance:
    vehicles: Sequence[Vehicle]
    jobs: Sequence[Job]
    seconds: np.ndarray  # int64 [points, points]
    costs: np.ndarray  # int64 [points, points]
    allowed: np.ndarray  # bool [vehicles, jobs]
    starts: list[int]  # point of each agent's start
    ends: list[int]  # point of each agent's end
    depots: int  # how many points are agents' places

    @property
    def size(self) -> int:
        return len(self.vehicles)

    def start(self, v: int) -> int:
        return self.starts[v]

    def end(self, v: int) -> int:
        return self.ends[v]

    def node(self, j: int) -> int:
        return self.depots + j

    def path(self, v: int, order: Sequence[int]) -> list[int]:
        return [self.start(v), *(self.node(j) for j in order), self.end(v)]

    def legs_s(self, v: int, order: Sequence[int]) -> list[int]:
        return [int(self.seconds[a, b]) for a, b in itertools.pairwise(self.path(v, order))]

    def cost(self, plan: Plan) -> int:
        return sum(int(self.costs[a, b]) for v, order in enumerate(plan) if order
                   for a, b in itertools.pairwise(self.path(v, order)))  # fmt: skip

    def score(self, plan: Plan) -> tuple[int, int, int]:
        """Smaller is better: most priority kept, then most visits, then least cost."""
        placed = [self.jobs[j] for order in plan for j in order]
        return -sum(job.priority for job in placed), -len(placed), self.cost(plan)


def build(travel: Travel, vehicles: Sequence[Vehicle], jobs: Sequence[Job], allowed: np.ndarray) -> Instance:
    places: dict[Location, int] = {}
    for place in [*(v.start for v in vehicles), *(v.home for v in vehicles)]:
        places.setdefault(place, len(places))
    points = [*places, *(j.location for j in jobs)]
    matrices = travel.matrices(points, points)
    starts = [places[v.start] for v in vehicles]
    ends = [places[v.home] for v in vehicles]
    return Instance(vehicles, jobs, matrices.seconds, matrices.costs, allowed, starts, ends, len(places))
