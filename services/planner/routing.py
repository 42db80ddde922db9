"""The routing engine: agents' days as a vehicle-routing problem with time windows.

Pure (no database, no Kafka): the planner builds a `RoutingProblem` (times as integer seconds
from an epoch the caller chooses; legal contact hours already intersected into each job's
windows), `solve` returns ordered stops per vehicle and the jobs it could not place, each with
a reason. VROOM (pyvroom) solves; travel comes from a matrix this module computes (haversine
times a road factor at a configured speed, or plain Euclidean for benchmark instances).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import numpy as np
import vroom

EARTH_RADIUS_M = 6_371_000.0
Window = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Break:
    window: Window
    duration_s: int


@dataclass(frozen=True, slots=True)
class Vehicle:
    id: str
    start: Location
    end: Location | None
    shift: Window
    max_jobs: int | None = None
    skills: frozenset[str] = frozenset()
    breaks: Sequence[Break] = ()
    capacity: int | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    location: Location
    service_s: int
    windows: Sequence[Window]
    priority: int = 0
    skills: frozenset[str] = frozenset()
    demand: int = 0


class Travel(Protocol):
    def matrices(self, points: Sequence[Location]) -> tuple[np.ndarray, np.ndarray]:
        """(seconds, metres) between every pair of points, as integer matrices."""
        ...


@dataclass(frozen=True, slots=True)
class HaversineTravel:
    """Great-circle distance times a road factor, at a constant speed."""

    speed_kmh: float = 25.0
    road_factor: float = 1.35

    def matrices(self, points: Sequence[Location]) -> tuple[np.ndarray, np.ndarray]:
        lat = np.radians([p.lat for p in points])
        lon = np.radians([p.lon for p in points])
        dlat = lat[:, None] - lat[None, :]
        dlon = lon[:, None] - lon[None, :]
        a = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
        metres = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1))) * self.road_factor
        seconds = np.ceil(metres / (self.speed_kmh / 3.6))
        return seconds.astype(np.uint32), np.rint(metres).astype(np.uint32)


@dataclass(frozen=True, slots=True)
class EuclideanTravel:
    """Plane distance between (lon, lat) read as (x, y), times `scale`; travel time = distance.

    Rounded up, so a route feasible in these integers is feasible in exact arithmetic too.
    """

    scale: float = 1.0

    def matrices(self, points: Sequence[Location]) -> tuple[np.ndarray, np.ndarray]:
        x = np.array([p.lon for p in points])
        y = np.array([p.lat for p in points])
        dist = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) * self.scale
        rounded = np.ceil(dist - 1e-9).astype(np.uint32)
        return rounded, rounded


@dataclass(frozen=True, slots=True)
class RoutingProblem:
    vehicles: Sequence[Vehicle]
    jobs: Sequence[Job]
    travel: Travel = field(default_factory=HaversineTravel)


@dataclass(frozen=True, slots=True)
class Stop:
    job_id: str
    arrival_s: int
    service_start_s: int
    departure_s: int


@dataclass(frozen=True, slots=True)
class Route:
    vehicle_id: str
    stops: list[Stop]
    travel_s: int
    distance_m: int


@dataclass(frozen=True, slots=True)
class Unassigned:
    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Solution:
    routes: list[Route]
    unassigned: list[Unassigned]


NO_WINDOW = "no lawful visit time on that day (contact rules, holidays or suppression)"
NO_SKILL = "no available agent with the required skills (language, hardship training)"
UNREACHABLE = "cannot be reached within its window from any qualified agent's shift"
NO_CAPACITY = "no capacity left: higher-priority visits filled the agents' days"


GROUP_VEHICLES = 8  # agents per sub-problem when a city day is too big for one matrix
DECOMPOSE_ABOVE = 1500  # jobs


def solve(
    problem: RoutingProblem, solver: str = "vroom", time_limit_s: float = 10.0, exploration_level: int = 5,
    threads: int = 2,
) -> Solution:  # fmt: skip
    """Route the jobs that can be routed; explain the others.

    A city-sized day is decomposed: agents are grouped by where they start (k-means), each
    job goes to the group of its nearest qualified agent, each group keeps at most twice its
    capacity of jobs by priority, and the groups are solved one after another within the
    time budget. Jobs cut at that step are reported as lost to capacity.
    """
    if solver != "vroom":
        raise ValueError(f"unknown solver {solver!r}")
    if len(problem.jobs) > DECOMPOSE_ABOVE and len(problem.vehicles) > GROUP_VEHICLES:
        return _solve_decomposed(problem, time_limit_s, exploration_level, threads)
    return _solve_whole(problem, time_limit_s, exploration_level, threads)


def _solve_decomposed(
    problem: RoutingProblem, time_limit_s: float, exploration_level: int, threads: int
) -> Solution:
    groups = _vehicle_groups(problem.vehicles)
    starts = np.array([[v.start.lat, v.start.lon] for v in problem.vehicles])
    group_of_vehicle = {id(v): g for g, members in enumerate(groups) for v in members}
    buckets: list[list[Job]] = [[] for _ in groups]
    unassigned: list[Unassigned] = []
    for job in problem.jobs:
        qualified = [k for k, v in enumerate(problem.vehicles) if job.skills <= v.skills]
        if not qualified:
            unassigned.append(Unassigned(job.id, NO_WINDOW if not job.windows else NO_SKILL))
            continue
        here = np.array([job.location.lat, job.location.lon])
        nearest = min(qualified, key=lambda k: float(np.sum((starts[k] - here) ** 2)))
        buckets[group_of_vehicle[id(problem.vehicles[nearest])]].append(job)
    routes: list[Route] = []
    budget = time_limit_s / max(len(groups), 1)
    for members, jobs in zip(groups, buckets, strict=True):
        capacity = sum(v.max_jobs or len(jobs) for v in members)
        ranked = sorted(jobs, key=lambda j: -j.priority)
        kept, cut = ranked[: 2 * capacity], ranked[2 * capacity :]
        unassigned += [Unassigned(j.id, NO_CAPACITY) for j in cut]
        if not kept:
            continue
        # Many small sub-problems share the budget: a lighter search level keeps each one short.
        part = _solve_whole(
            RoutingProblem(members, kept, problem.travel), budget, min(exploration_level, 3), threads
        )
        routes += part.routes
        unassigned += part.unassigned
    return Solution(routes, unassigned)


def _vehicle_groups(vehicles: Sequence[Vehicle]) -> list[list[Vehicle]]:
    """Agents grouped by start location (a few rounds of k-means, deterministic seeds)."""
    k = max(1, round(len(vehicles) / GROUP_VEHICLES))
    points = np.array([[v.start.lat, v.start.lon] for v in vehicles])
    centres = points[np.linspace(0, len(points) - 1, k).astype(int)]
    for _ in range(10):
        labels = np.argmin(((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
        centres = np.array([points[labels == g].mean(axis=0) if np.any(labels == g) else centres[g]
                            for g in range(k)])  # fmt: skip
    return [[v for v, label in zip(vehicles, labels, strict=True) if label == g] for g in range(k)
            if np.any(labels == g)]  # fmt: skip


def _solve_whole(
    problem: RoutingProblem, time_limit_s: float, exploration_level: int, threads: int
) -> Solution:
    points = [*(v.start for v in problem.vehicles), *(v.end or v.start for v in problem.vehicles),
              *(j.location for j in problem.jobs)]  # fmt: skip
    seconds, metres = problem.travel.matrices(points)
    n = len(problem.vehicles)
    screened = _screen(problem, seconds, n)
    routable = [j for j in problem.jobs if j.id not in screened]
    if not routable or not problem.vehicles:
        return Solution([], [Unassigned(j.id, screened.get(j.id, NO_SKILL)) for j in problem.jobs])
    skill_ids = _skill_ids(problem)
    job_index = {j.id: 2 * n + i for i, j in enumerate(problem.jobs)}
    instance = vroom.Input()
    instance.set_durations_matrix(profile="car", matrix_input=seconds)
    instance.set_distances_matrix(profile="car", matrix_input=metres)
    for i, vehicle in enumerate(problem.vehicles):
        instance.add_vehicle(_vroom_vehicle(i, n, vehicle, skill_ids))
    instance.add_job([_vroom_job(k, job_index[j.id], j, skill_ids) for k, j in enumerate(problem.jobs)
                      if j.id not in screened])  # fmt: skip
    result = instance.solve(
        exploration_level=exploration_level, nb_threads=threads, timeout=timedelta(seconds=time_limit_s)
    )
    return _read(problem, result, screened, seconds, metres, n)


def _skill_ids(problem: RoutingProblem) -> dict[str, int]:
    names = sorted(
        {s for v in problem.vehicles for s in v.skills} | {s for j in problem.jobs for s in j.skills}
    )
    return {name: i + 1 for i, name in enumerate(names)}


def _vroom_vehicle(i: int, n: int, vehicle: Vehicle, skill_ids: dict[str, int]) -> vroom.Vehicle:
    return vroom.Vehicle(
        i,
        start=i,
        end=n + i,
        time_window=vroom.TimeWindow(*vehicle.shift),
        skills={skill_ids[s] for s in vehicle.skills},
        max_tasks=vehicle.max_jobs if vehicle.max_jobs is not None else 2**32,
        capacity=[vehicle.capacity] if vehicle.capacity is not None else [],
        breaks=[vroom.Break(k, time_windows=[vroom.TimeWindow(*b.window)], service=b.duration_s)
                for k, b in enumerate(vehicle.breaks)],
    )  # fmt: skip


def _vroom_job(k: int, index: int, job: Job, skill_ids: dict[str, int]) -> vroom.Job:
    return vroom.Job(
        k,
        location=index,
        default_service=job.service_s,
        time_windows=[vroom.TimeWindow(*w) for w in sorted(job.windows)],
        priority=max(0, min(100, job.priority)),
        skills={skill_ids[s] for s in job.skills},
        delivery=[job.demand] if job.demand else [],
    )


def _screen(problem: RoutingProblem, seconds: np.ndarray, n: int) -> dict[str, str]:
    """Jobs no agent could ever take, with the reason (not left to the solver to guess)."""
    reasons: dict[str, str] = {}
    for i, job in enumerate(problem.jobs):
        index = 2 * n + i
        qualified = [v for v, vehicle in enumerate(problem.vehicles) if job.skills <= vehicle.skills]
        if not job.windows:
            reasons[job.id] = NO_WINDOW
        elif not qualified:
            reasons[job.id] = NO_SKILL
        elif not any(_reachable(problem.vehicles[v], v, n, index, job, seconds) for v in qualified):
            reasons[job.id] = UNREACHABLE
    return reasons


def _reachable(vehicle: Vehicle, v: int, n: int, index: int, job: Job, seconds: np.ndarray) -> bool:
    start, end = vehicle.shift
    go, back = int(seconds[v, index]), int(seconds[index, n + v])
    for open_s, close_s in job.windows:
        service_start = max(start + go, open_s)
        if service_start <= close_s and service_start + job.service_s + back <= end:
            return True
    return False


def _read(
    problem: RoutingProblem, result: vroom.Solution, screened: dict[str, str], seconds: np.ndarray,
    metres: np.ndarray, n: int,
) -> Solution:  # fmt: skip
    frame = result.routes
    routes: list[Route] = []
    for v, vehicle in enumerate(problem.vehicles):
        steps = frame[(frame["vehicle_id"] == v) & (frame["type"] == "job")]
        if steps.empty:
            continue
        stops = [_stop(problem.jobs[int(row.id)], row) for row in steps.itertuples()]
        indices = [v, *(2 * n + int(row.id) for row in steps.itertuples()), n + v]
        travel = sum(int(seconds[a, b]) for a, b in itertools.pairwise(indices))
        distance = sum(int(metres[a, b]) for a, b in itertools.pairwise(indices))
        routes.append(Route(vehicle.id, stops, travel, distance))
    placed = {stop.job_id for route in routes for stop in route.stops}
    unassigned = [
        Unassigned(j.id, screened.get(j.id, NO_CAPACITY)) for j in problem.jobs if j.id not in placed
    ]
    return Solution(routes, unassigned)


def _stop(job: Job, row: object) -> Stop:
    arrival = int(row.arrival)  # type: ignore[attr-defined]
    start = arrival + int(row.waiting_time)  # type: ignore[attr-defined]
    return Stop(job.id, arrival, start, start + job.service_s)


def haversine_m(a: Location, b: Location) -> float:
    """Great-circle metres between two points (checkers and tests use it)."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlon = lat2 - lat1, math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))
