"""Feed a Solomon VRPTW instance through the planner's own routing code and write the routes.

    python -m services.planner.solomon INSTANCE.txt [--time-limit 10] [--out routes.json]

The adapter only translates the instance (depot = customer 0, the header's fleet and
capacity, travel time = Euclidean distance) into the routing model that plans agents' days;
times and distances are scaled by SCALE and rounded up, so every route is feasible in exact
arithmetic too. Distances are reported recomputed in floating point from the routes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from services.planner import routing as r

SCALE = 1000


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    x: float
    y: float
    demand: int
    ready: int
    due: int
    service: int


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    vehicles: int
    capacity: int
    depot: Customer
    customers: list[Customer]


def parse(path: Path) -> Instance:
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    vehicle_row = next(i for i, parts in enumerate(lines) if parts[:2] == ["NUMBER", "CAPACITY"]) + 1
    vehicles, capacity = int(lines[vehicle_row][0]), int(lines[vehicle_row][1])
    rows = [parts for parts in lines[vehicle_row + 1 :] if parts[0].isdigit()]
    customers = [Customer(int(p[0]), float(p[1]), float(p[2]), int(float(p[3])), int(float(p[4])),
                          int(float(p[5])), int(float(p[6]))) for p in rows]  # fmt: skip
    return Instance(path.stem, vehicles, capacity, customers[0], customers[1:])


def problem_of(instance: Instance) -> r.RoutingProblem:
    depot = instance.depot
    home = r.Location(lat=depot.y, lon=depot.x)
    vehicles = [r.Vehicle(id=str(k), start=home, end=home, shift=(depot.ready * SCALE, depot.due * SCALE),
                          capacity=instance.capacity) for k in range(instance.vehicles)]  # fmt: skip
    jobs = [r.Job(id=str(c.id), location=r.Location(lat=c.y, lon=c.x), service_s=c.service * SCALE,
                  windows=[(c.ready * SCALE, c.due * SCALE)], demand=c.demand) for c in instance.customers]  # fmt: skip
    return r.RoutingProblem(vehicles, jobs, r.EuclideanTravel(scale=SCALE))


def distance(instance: Instance, routes: list[list[int]]) -> float:
    points = {c.id: (c.x, c.y) for c in [instance.depot, *instance.customers]}
    total = 0.0
    for route in routes:
        path = [0, *route, 0]
        total += sum(math.dist(points[a], points[b]) for a, b in itertools.pairwise(path))
    return total


def solve_instance(instance: Instance, time_limit_s: float) -> tuple[list[list[int]], float]:
    started = time.perf_counter()
    solution = r.solve(problem_of(instance), time_limit_s=time_limit_s, exploration_level=5, threads=2)
    routes = [[int(stop.job_id) for stop in route.stops] for route in solution.routes]
    return routes, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instance", type=Path)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    instance = parse(args.instance)
    routes, seconds = solve_instance(instance, args.time_limit)
    if args.out:
        args.out.write_text(json.dumps(routes))
    served = sum(len(route) for route in routes)
    print(f"{instance.name}: distance {distance(instance, routes):.2f}, vehicles {len(routes)}, "
          f"served {served}/{len(instance.customers)}, {seconds:.2f} s")  # fmt: skip
    return 0 if served == len(instance.customers) else 1


if __name__ == "__main__":
    raise SystemExit(main())
