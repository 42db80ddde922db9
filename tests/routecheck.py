"""Independent checkers of routes: their own parsing and arithmetic, not the solver's word.

- `check_solomon(instance, routes)`: Solomon VRPTW conventions — every customer served exactly
  once, load <= capacity, service starts within [ready, due] (waiting allowed when early),
  each route leaves the depot at/after its ready time and is back by its due date, travel
  time = Euclidean distance in floating point, service time spent at each customer.
- `check_day(problem, solution)`: a planned day of the city model — the agent's skills, max
  visits and load, each visit inside one of its windows, travel recomputed from lat/lon
  (haversine × road factor at the speed), the breaks (each once, in its window, never during
  a visit, with room for the travel around it), shift start and end, every job accounted for.

Both return the list of violations found: empty means valid.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

EPS = 1e-6  # Solomon: floating-point slack on times
TOLERANCE_S = 1  # city: one second for rounding a leg's seconds differently from the solver
EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True, slots=True)
class SolomonCustomer:
    id: int
    x: float
    y: float
    demand: float
    ready: float
    due: float
    service: float


@dataclass(frozen=True, slots=True)
class SolomonInstance:
    vehicles: int
    capacity: float
    depot: SolomonCustomer
    customers: list[SolomonCustomer]


def load_solomon(path: Path) -> SolomonInstance:
    """Read the original text format without any of the planner's code."""
    rows: list[list[float]] = []
    vehicles = capacity = 0.0
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines):
        words = line.split()
        if words[:2] == ["NUMBER", "CAPACITY"]:
            vehicles, capacity = (float(w) for w in lines[n + 1].split()[:2])
        elif len(words) == 7 and all(_is_number(w) for w in words):
            rows.append([float(w) for w in words])
    customers = [SolomonCustomer(int(row[0]), *row[1:]) for row in rows]
    return SolomonInstance(int(vehicles), capacity, customers[0], customers[1:])


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


class _SolomonLike(Protocol):
    vehicles: int
    depot: Any
    customers: Sequence[Any]

    @property
    def capacity(self) -> float: ...


def check_solomon(instance: _SolomonLike | Path, routes: list[list[int]]) -> list[str]:
    """Every violation of the benchmark's conventions; empty when the routes are valid."""
    data = load_solomon(instance) if isinstance(instance, Path) else instance
    problems: list[str] = []
    by_id = {c.id: c for c in data.customers}
    served = [c for route in routes for c in route]
    if sorted(served) != sorted(by_id):
        problems.append("not every customer served exactly once")
    if len(routes) > data.vehicles:
        problems.append(f"{len(routes)} routes for {data.vehicles} vehicles")
    for n, route in enumerate(routes):
        problems += _check_solomon_route(data, by_id, n, route)
    return problems


def _check_solomon_route(data: _SolomonLike, by_id: dict[int, Any], n: int, route: list[int]) -> list[str]:
    unknown = [c for c in route if c not in by_id]
    if unknown:
        return [f"route {n}: unknown customers {unknown}"]
    problems = []
    if sum(by_id[c].demand for c in route) > data.capacity + EPS:
        problems.append(f"route {n}: load over capacity {data.capacity}")
    depot = data.depot
    clock, here = float(depot.ready), depot  # leaves the depot at its ready time, not before
    for cid in route:
        customer = by_id[cid]
        clock = max(clock + math.dist((here.x, here.y), (customer.x, customer.y)), customer.ready)
        if clock > customer.due + EPS:
            problems.append(
                f"route {n}: customer {cid} served at {clock:.3f} after its due date {customer.due}"
            )
        clock += customer.service
        here = customer
    back = clock + math.dist((here.x, here.y), (depot.x, depot.y))
    if back > depot.due + EPS:
        problems.append(f"route {n}: back at the depot at {back:.3f} after its due date {depot.due}")
    return problems


def solomon_distance(instance: _SolomonLike | Path, routes: list[list[int]]) -> float:
    data = load_solomon(instance) if isinstance(instance, Path) else instance
    points = {c.id: (c.x, c.y) for c in [data.depot, *data.customers]}
    depot = data.depot.id
    return sum(
        math.dist(points[a], points[b])
        for route in routes
        for a, b in itertools.pairwise([depot, *route, depot])
    )


# ---- the city model --------------------------------------------------------------------------


def road_metres(a: Any, b: Any, road_factor: float) -> float:
    """Haversine × road factor, written here again so the checker shares no code with routing."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b.lon - a.lon) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h))) * road_factor


def check_day(problem: Any, solution: Any) -> list[str]:
    """Every violation in a planned day; `problem.travel` gives the speed and road factor."""
    speed_ms = problem.travel.speed_kmh / 3.6
    factor = problem.travel.road_factor
    jobs = {job.id: job for job in problem.jobs}
    vehicles = {vehicle.id: vehicle for vehicle in problem.vehicles}
    problems = _check_accounting(jobs, vehicles, solution)
    for route in solution.routes:
        vehicle = vehicles.get(route.vehicle_id)
        if vehicle is not None and all(stop.job_id in jobs for stop in route.stops):
            problems += _check_route(vehicle, jobs, route, speed_ms, factor)
    return problems


def _check_accounting(jobs: dict[str, Any], vehicles: dict[str, Any], solution: Any) -> list[str]:
    problems = []
    placed = [stop.job_id for route in solution.routes for stop in route.stops]
    left = [u.job_id for u in solution.unassigned]
    if sorted(placed + left) != sorted(jobs):
        problems.append("jobs not accounted for exactly once (placed or unassigned)")
    problems += [f"job {u.job_id} unassigned without a reason" for u in solution.unassigned if not u.reason]
    used = [route.vehicle_id for route in solution.routes]
    if len(set(used)) != len(used) or not set(used) <= set(vehicles):
        problems.append("routes for unknown or repeated agents")
    return problems


def _check_route(vehicle: Any, jobs: dict[str, Any], route: Any, speed_ms: float, factor: float) -> list[str]:
    name = f"agent {vehicle.id}"
    visits = [jobs[stop.job_id] for stop in route.stops]
    problems = []
    if vehicle.max_jobs is not None and len(visits) > vehicle.max_jobs:
        problems.append(f"{name}: {len(visits)} visits, more than {vehicle.max_jobs}")
    if vehicle.capacity is not None and sum(job.demand for job in visits) > vehicle.capacity:
        problems.append(f"{name}: load over capacity")
    for job in visits:
        if not job.skills <= vehicle.skills:
            problems.append(f"{name}: lacks {sorted(job.skills - vehicle.skills)} for job {job.id}")
    places = [vehicle.start, *(job.location for job in visits), vehicle.end or vehicle.start]
    legs = [math.ceil(road_metres(a, b, factor) / speed_ms - 1e-9) for a, b in itertools.pairwise(places)]
    problems += _check_times(name, vehicle, visits, route, legs)
    problems += _check_breaks(name, vehicle, route, legs)
    distance = sum(road_metres(a, b, factor) for a, b in itertools.pairwise(places))
    if abs(distance - route.distance) > 1e-6 * max(1.0, distance):
        problems.append(f"{name}: reported distance {route.distance:.1f} m, recomputed {distance:.1f} m")
    return problems


def _check_times(name: str, vehicle: Any, visits: list[Any], route: Any, legs: list[int]) -> list[str]:
    problems = []
    if route.start_s < vehicle.shift[0] or route.end_s > vehicle.shift[1]:
        problems.append(f"{name}: day {route.start_s}..{route.end_s} outside the shift {vehicle.shift}")
    leave = route.start_s
    for k, (job, stop) in enumerate(zip(visits, route.stops, strict=True)):
        if stop.arrival_s < leave + legs[k] - TOLERANCE_S:
            problems.append(f"{name}: arrives at {job.id} before the travel from the previous place")
        if stop.service_start_s < stop.arrival_s:
            problems.append(f"{name}: starts {job.id} before arriving")
        if not any(opens <= stop.service_start_s <= closes for opens, closes in job.windows):
            problems.append(
                f"{name}: visit {job.id} starts at {stop.service_start_s}, outside {list(job.windows)}"
            )
        if stop.departure_s != stop.service_start_s + job.service_s:
            problems.append(f"{name}: visit {job.id} does not last its service time")
        leave = stop.departure_s
    if route.end_s < leave + legs[-1] - TOLERANCE_S:
        problems.append(f"{name}: back home before the travel from the last visit")
    return problems


def _check_breaks(name: str, vehicle: Any, route: Any, legs: list[int]) -> list[str]:
    problems = []
    if route.stops and len(route.breaks) != len(vehicle.breaks):
        problems.append(f"{name}: {len(route.breaks)} breaks taken, {len(vehicle.breaks)} due")
    due = sorted(vehicle.breaks, key=lambda b: b.window)
    for taken, wanted in zip(sorted(route.breaks, key=lambda b: b.start_s), due, strict=False):
        if not wanted.window[0] <= taken.start_s <= wanted.window[1]:
            problems.append(f"{name}: break at {taken.start_s} outside its window {wanted.window}")
        if taken.duration_s < wanted.duration_s:
            problems.append(f"{name}: break of {taken.duration_s} s, {wanted.duration_s} s due")
    # Per gap between two places: the breaks lie between leaving and the next start, without
    # overlapping, and the gap holds the travel plus the breaks.
    bounds = [route.start_s, *(s.departure_s for s in route.stops)]
    nexts = [*(s.service_start_s for s in route.stops), route.end_s]
    for gap, (leave, begin) in enumerate(zip(bounds, nexts, strict=True)):
        here = sorted((b for b in route.breaks if b.after_stops == gap), key=lambda b: b.start_s)
        clock = leave
        for b in here:
            if b.start_s < clock or b.start_s + b.duration_s > begin:
                problems.append(f"{name}: break at {b.start_s} overlaps a visit or another break")
            clock = b.start_s + b.duration_s
        if begin - leave < legs[gap] + sum(b.duration_s for b in here) - TOLERANCE_S:
            problems.append(f"{name}: no room for the travel and the break after visit {gap}")
    return problems
