"""Solve a Solomon VRPTW instance with the planner's own routing code and write the routes.

    python -m services.planner.solomon INSTANCE.txt [--solver vroom|ortools|hybrid]
        [--time-limit 10] [--threads 2] [--out routes.json]

The adapter only translates the instance into the routing model that plans agents' days:
depot = customer 0 (every vehicle's start, end and shift), the header's vehicle count and
capacity, each customer a job with its demand, window and service time, travel time =
Euclidean distance. The model counts time in integers, so Solomon time is scaled by SCALE
(a thousandth of a unit) and legs rounded up: a route feasible there is feasible exactly.
Routes are written as JSON `[[customer ids in visit order], ...]`; the distance printed is
recomputed in floating point from those routes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
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
    """The original text format: a name line, VEHICLE NUMBER/CAPACITY, then the CUSTOMER table."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    header = next(i for i, words in enumerate(lines) if words[:2] == ["NUMBER", "CAPACITY"]) + 1
    vehicles, capacity = int(lines[header][0]), int(lines[header][1])
    rows = [words for words in lines[header + 1 :] if words[0].isdigit() and len(words) >= 7]
    customers = [Customer(int(w[0]), float(w[1]), float(w[2]), int(float(w[3])), int(float(w[4])),
                          int(float(w[5])), int(float(w[6]))) for w in rows]  # fmt: skip
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
    return sum(
        math.dist(points[a], points[b]) for route in routes for a, b in itertools.pairwise([0, *route, 0])
    )


def solve_instance(
    instance: Instance, time_limit_s: float = 10.0, solver: str = r.DEFAULT_SOLVER, threads: int = 2
) -> tuple[list[list[int]], float]:
    """Routes as customer ids per used vehicle, and the wall-clock seconds it took."""
    started = time.perf_counter()
    problem = problem_of(instance)
    solution = r.solve(problem, solver=solver, time_limit_s=time_limit_s - (time.perf_counter() - started),
                       threads=threads)  # fmt: skip
    routes = [[int(stop.job_id) for stop in route.stops] for route in solution.routes if route.stops]
    return routes, time.perf_counter() - started


def _seconds_since_process_start() -> float:
    """Interpreter start-up and imports count against the budget too (Linux; else 0)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(uptime - ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return 0.0


def main(argv: list[str] | None = None, started: float | None = None) -> int:
    """The CLI; `started` (a perf_counter reading) is when the budget began, default now."""
    started = time.perf_counter() if started is None else started
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("instance", type=Path)
    parser.add_argument("--solver", choices=r.SOLVERS, default=r.DEFAULT_SOLVER)
    parser.add_argument(
        "--time-limit", type=float, default=10.0, help="wall-clock seconds, everything included"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    instance = parse(args.instance)
    budget = args.time_limit - (time.perf_counter() - started)
    routes, _ = solve_instance(instance, budget, args.solver, args.threads)
    if args.out:
        args.out.write_text(json.dumps(routes))
    served = sum(len(route) for route in routes)
    print(f"{instance.name}: distance {distance(instance, routes):.2f}, vehicles used {len(routes)}, "
          f"served {served}/{len(instance.customers)}, time {time.perf_counter() - started:.2f} s "
          f"({args.solver})")  # fmt: skip
    return 0 if served == len(instance.customers) else 1


if __name__ == "__main__":
    raise SystemExit(main(started=time.perf_counter() - _seconds_since_process_start()))
