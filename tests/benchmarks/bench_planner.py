"""make bench-planner: the planner's routing engine on the Solomon VRPTW set and a city day.

Solomon: every instance through `services.planner.solomon` (the planner's own routing code,
default solver), routes written to ROUTES_DIR and checked by tests/routecheck.py, gap to the
shortest known distance `(distance / min_distance - 1) * 100`. COMPARE=1 runs the other solvers
too and prints them side by side (plus a per-family table). City day: 10,000 open cases and
200 agents around Shenzhen through `routing.solve`, checked by routecheck.check_day.

Env: SOLOMON=C101,R101 (subset), TIME_LIMIT (s per instance, 10), COMPARE=1, SOLVER=name,
CITY_CASES (10000), CITY_AGENTS (200), CITY_TIME_LIMIT (s, 55), ROUTES_DIR.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from services.planner import routing as r  # noqa: E402
from services.planner import solomon  # noqa: E402
from tests.routecheck import check_day, check_solomon, solomon_distance  # noqa: E402

BENCH = Path(os.environ.get("SOLOMON_DIR", "/work/shared/benchmarks/solomon"))
ROUTES_DIR = Path(os.environ.get("ROUTES_DIR", ROOT / "bench-results" / "solomon-routes"))
FAMILIES = ("C1", "C2", "R1", "R2", "RC1", "RC2")

HOUR = 3600
CITY_CENTRE = (22.54, 114.06)
LEGAL_HOURS = (8 * HOUR, 22 * HOUR)  # local contact hours, already intersected into windows
SHIFT = (9 * HOUR, 18 * HOUR)
BREAK = r.Break(window=(11 * HOUR + 1800, 14 * HOUR), duration_s=45 * 60)


def solve_solomon(names: list[str], solver: str, time_limit: float, best: dict[str, float]) -> list[dict]:
    rows = []
    for name in names:
        path = BENCH / "instances" / f"{name}.txt"
        started = time.perf_counter()
        instance = solomon.parse(path)  # parse inside the timing: the CLI's wall clock
        routes, _ = solomon.solve_instance(instance, time_limit - (time.perf_counter() - started), solver)
        seconds = time.perf_counter() - started
        problems = check_solomon(path, routes)
        distance = solomon_distance(path, routes)
        rows.append({"instance": name, "solver": solver, "distance": distance, "vehicles": len(routes),
                     "gap": (distance / best[name] - 1) * 100, "seconds": seconds, "problems": problems,
                     "routes": routes})  # fmt: skip
    return rows


def run_solomon(time_limit: float) -> dict[str, object]:
    best = {row["instance"]: float(row["min_distance"]) for row in csv.DictReader((BENCH / "bks.csv").open())}
    names = os.environ["SOLOMON"].split(",") if os.environ.get("SOLOMON") else sorted(best)
    default = os.environ.get("SOLVER", r.DEFAULT_SOLVER)
    solvers = [default, *(s for s in r.SOLVERS if s != default)] if os.environ.get("COMPARE") else [default]
    ROUTES_DIR.mkdir(parents=True, exist_ok=True)
    results = {solver: [] for solver in solvers}
    print(
        f"{'instance':<8} " + " ".join(f"{s + ' dist':>14} {'gap%':>6} {'veh':>3} {'s':>5}" for s in solvers)
    )
    for name in names:
        line = f"{name:<8} "
        for solver in solvers:
            (row,) = solve_solomon([name], solver, time_limit, best)
            results[solver].append(row)
            if solver == default:
                (ROUTES_DIR / f"{name}.json").write_text(json.dumps(row["routes"]))
            flag = "" if not row["problems"] else f" INVALID {row['problems'][:2]}"
            line += f"{row['distance']:>14.2f} {row['gap']:>6.2f} {row['vehicles']:>3} {row['seconds']:>5.2f}{flag} "
        print(line, flush=True)
    for solver in solvers:
        print_families(solver, results[solver])
    rows = results[default]
    return {"instances": len(rows), "avg_gap": sum(x["gap"] for x in rows) / len(rows),
            "max_gap": max(x["gap"] for x in rows), "invalid": sum(bool(x["problems"]) for x in rows),
            "max_time": max(x["seconds"] for x in rows)}  # fmt: skip


def print_families(solver: str, rows: list[dict]) -> None:
    print(f"\n{solver}: {'family':<6} {'n':>3} {'avg gap %':>9} {'max gap %':>9} {'avg s':>6} {'max s':>6}")
    for name in (*FAMILIES, "all"):
        members = [x for x in rows if name == "all" or _family(x["instance"]) == name]
        if members:
            gaps, times = [x["gap"] for x in members], [x["seconds"] for x in members]
            print(f"{'':>{len(solver) + 2}}{name:<6} {len(members):>3} {sum(gaps) / len(gaps):>9.2f} "
                  f"{max(gaps):>9.2f} {sum(times) / len(times):>6.2f} {max(times):>6.2f}")  # fmt: skip


def _family(name: str) -> str:
    return name[:3] if name.startswith("RC") else name[:2]


def city_day(cases: int, agents: int, seed: int = 7) -> r.RoutingProblem:
    """A synthetic day: cases clustered in districts, agents living among them.

    Times are seconds from local midnight. Half the customers asked for a 2–4 h window, one in
    ten of those gave two; the others may be visited within the legal contact hours.
    """
    rng = random.Random(seed)
    districts = [(CITY_CENTRE[0] + rng.uniform(-0.12, 0.12), CITY_CENTRE[1] + rng.uniform(-0.25, 0.25))
                 for _ in range(12)]  # fmt: skip
    vehicles = [_agent(rng, k, districts) for k in range(agents)]
    jobs = [_case(rng, k, districts) for k in range(cases)]
    return r.RoutingProblem(vehicles, jobs, r.HaversineTravel(speed_kmh=30, road_factor=1.3))


def _near(rng: random.Random, districts: list[tuple[float, float]], spread: float) -> r.Location:
    lat, lon = rng.choice(districts)
    return r.Location(lat=rng.gauss(lat, spread), lon=rng.gauss(lon, spread / math.cos(math.radians(lat))))


def _agent(rng: random.Random, k: int, districts: list[tuple[float, float]]) -> r.Vehicle:
    languages = {"lang:zh", "lang:en"} if k % 10 == 0 else {"lang:zh"}
    skills = frozenset(languages | ({"hardship"} if k % 4 == 0 else set()))
    home = _near(rng, districts, 0.04)
    return r.Vehicle(f"AG-{k:03d}", home, home, SHIFT, max_jobs=12, skills=skills, breaks=[BREAK])


def _case(rng: random.Random, k: int, districts: list[tuple[float, float]]) -> r.Job:
    skills = {"lang:en" if rng.random() < 0.05 else "lang:zh"} | (
        {"hardship"} if rng.random() < 0.03 else set()
    )
    return r.Job(f"CASE-{k:05d}", _near(rng, districts, 0.03), service_s=rng.randint(20, 30) * 60,
                 windows=_windows(rng), priority=rng.randint(1, 99), skills=frozenset(skills))  # fmt: skip


def _windows(rng: random.Random) -> list[tuple[int, int]]:
    if rng.random() < 0.5:
        return [LEGAL_HOURS]
    windows = []
    for _ in range(2 if rng.random() < 0.1 else 1):
        opens = rng.randint(9, 17) * HOUR + rng.choice([0, 1800])
        wanted = (opens, opens + rng.randint(2, 4) * HOUR)
        windows.append((max(wanted[0], LEGAL_HOURS[0]), min(wanted[1], LEGAL_HOURS[1])))
    return windows


def run_city(cases: int, agents: int, time_limit: float) -> dict[str, float]:
    problem = city_day(cases, agents)
    started = time.perf_counter()
    solution = r.solve(problem, time_limit_s=time_limit)
    seconds = time.perf_counter() - started
    problems = check_day(problem, solution)
    planned = sum(len(route.stops) for route in solution.routes)
    codes: dict[str, int] = {}
    for u in solution.unassigned:
        codes[u.code.value] = codes.get(u.code.value, 0) + 1
    kept = [problem.jobs[i].priority for i, job in enumerate(problem.jobs) if job.id in _placed(solution)]
    print(f"\ncity day: {cases} cases, {agents} agents -> {planned} visits on {len(solution.routes)} routes in "
          f"{seconds:.1f} s ({solution.solver}); unplanned {len(solution.unassigned)} {codes}; mean priority kept "
          f"{sum(kept) / max(len(kept), 1):.1f} of all {sum(j.priority for j in problem.jobs) / max(cases, 1):.1f}; "
          f"{solution.distance / 1000 / max(len(solution.routes), 1):.1f} km per route; "
          f"checker: {len(problems)} problems {problems[:3]}")  # fmt: skip
    return {"seconds": seconds, "unplanned": len(solution.unassigned), "invalid": len(problems)}


def _placed(solution: r.Solution) -> set[str]:
    return {stop.job_id for route in solution.routes for stop in route.stops}


def main() -> int:
    sol = run_solomon(float(os.environ.get("TIME_LIMIT", "10")))
    cases, agents = int(os.environ.get("CITY_CASES", "10000")), int(os.environ.get("CITY_AGENTS", "200"))
    city = run_city(cases, agents, float(os.environ.get("CITY_TIME_LIMIT", "55")))
    print(json.dumps({
        "solomon_instances": sol["instances"], "solomon_avg_gap_pct": round(sol["avg_gap"], 3),
        "solomon_max_gap_pct": round(sol["max_gap"], 3), "solomon_invalid": sol["invalid"],
        "solomon_max_time_s": round(sol["max_time"], 2), "city_cases": cases, "city_agents": agents,
        "city_plan_s": round(city["seconds"], 1), "city_unplanned": city["unplanned"],
        "routes_dir": str(ROUTES_DIR.relative_to(ROOT) if ROUTES_DIR.is_relative_to(ROOT) else ROUTES_DIR),
    }))  # fmt: skip
    return 0 if sol["invalid"] == 0 and city["invalid"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
