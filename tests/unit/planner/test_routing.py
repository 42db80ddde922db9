"""The routing engine on hand-made days whose right answer is known, through every solver."""

from __future__ import annotations

import random

import numpy as np
import pytest

from services.planner import routing as r
from services.planner.routing import engines
from services.planner.routing.instance import build
from tests.routecheck import check_day

HOUR = 3600
SOLVERS = pytest.mark.parametrize("solver", r.SOLVERS)
HOME = r.Location(lat=22.54, lon=114.06)
CITY = r.HaversineTravel(speed_kmh=30, road_factor=1.3)
DAY = (9 * HOUR, 18 * HOUR)


def east(km: float, north_km: float = 0.0) -> r.Location:
    """A point `km` east and `north_km` north of HOME (small distances: flat enough)."""
    return r.Location(lat=HOME.lat + north_km / 111.2, lon=HOME.lon + km / (111.2 * 0.9237))


def agent(name: str = "A", **fields: object) -> r.Vehicle:
    return r.Vehicle(name, HOME, HOME, fields.pop("shift", DAY), **fields)  # type: ignore[arg-type]


def visit(
    name: str, where: r.Location, windows: list[tuple[int, int]] | None = None, **fields: object
) -> r.Job:
    return r.Job(name, where, fields.pop("service_s", 20 * 60), windows or [DAY], **fields)  # type: ignore[arg-type]


def solve(vehicles: list[r.Vehicle], jobs: list[r.Job], solver: str, seconds: float = 1.0) -> r.Solution:
    problem = r.RoutingProblem(vehicles, jobs, CITY)
    solution = r.solve(problem, solver=solver, time_limit_s=seconds)
    assert check_day(problem, solution) == []
    return solution


def order(solution: r.Solution, vehicle: str = "A") -> list[str]:
    return next(
        ([s.job_id for s in route.stops] for route in solution.routes if route.vehicle_id == vehicle), []
    )


def reasons(solution: r.Solution) -> dict[str, r.Reason]:
    return {u.job_id: u.code for u in solution.unassigned}


@SOLVERS
def test_a_square_is_driven_round_its_perimeter(solver: str) -> None:
    corners = r.EuclideanTravel(scale=1000)
    jobs = [r.Job(str(k), r.Location(lat=y, lon=x), 0, [(0, 10**6)])
            for k, (x, y) in enumerate([(0, 10), (10, 10), (10, 0), (5, 10), (10, 5)])]  # fmt: skip
    vehicle = r.Vehicle("A", r.Location(0, 0), None, (0, 10**6))
    solution = r.solve(r.RoutingProblem([vehicle], jobs, corners), solver=solver, time_limit_s=1)
    assert solution.distance == pytest.approx(40.0)
    assert order(solution) in (["0", "3", "1", "4", "2"], ["2", "4", "1", "3", "0"])


@SOLVERS
def test_time_windows_decide_the_order(solver: str) -> None:
    near, far = east(2), east(6)
    jobs = [
        visit("near-late", near, [(15 * HOUR, 16 * HOUR)]),
        visit("far-early", far, [(9 * HOUR, 10 * HOUR)]),
    ]
    solution = solve([agent()], jobs, solver)
    assert order(solution) == ["far-early", "near-late"]
    stops = solution.routes[0].stops
    assert stops[1].service_start_s == 15 * HOUR  # waited for the window to open


@SOLVERS
def test_nothing_runs_past_the_end_of_the_shift(solver: str) -> None:
    jobs = [visit(f"v{k}", east(3 + k), [(16 * HOUR, 17 * HOUR + 1800)], service_s=40 * 60) for k in range(3)]
    solution = solve([agent()], jobs, solver)
    route = solution.routes[0]
    assert route.end_s <= DAY[1]
    assert len(route.stops) < 3
    assert set(reasons(solution).values()) == {r.Reason.TIME}


@SOLVERS
def test_the_break_is_taken_in_its_window_and_never_during_a_visit(solver: str) -> None:
    lunch = r.Break(window=(12 * HOUR, 13 * HOUR), duration_s=45 * 60)
    jobs = [visit(f"v{k}", east(1 + k % 3, k // 3), service_s=30 * 60) for k in range(9)]
    solution = solve([agent(breaks=[lunch])], jobs, solver, seconds=2)
    (route,) = solution.routes
    (taken,) = route.breaks
    assert 12 * HOUR <= taken.start_s <= 13 * HOUR
    assert all(
        s.departure_s <= taken.start_s or s.service_start_s >= taken.start_s + 45 * 60 for s in route.stops
    )


@SOLVERS
def test_a_vulnerable_customer_gets_the_hardship_trained_agent_and_languages_match(solver: str) -> None:
    vehicles = [agent("plain", skills=frozenset({"lang:zh"})),
                agent("trained", skills=frozenset({"lang:zh", "hardship"})),
                agent("english", skills=frozenset({"lang:en", "lang:zh"}))]  # fmt: skip
    jobs = [visit("vulnerable", east(1), skills=frozenset({"lang:zh", "hardship"})),
            visit("english", east(2), skills=frozenset({"lang:en"})),
            visit("tamil", east(3), skills=frozenset({"lang:ta"}))]  # fmt: skip
    solution = solve(vehicles, jobs, solver)
    assert order(solution, "trained") == ["vulnerable"]
    assert order(solution, "english") == ["english"]
    assert reasons(solution) == {"tamil": r.Reason.NO_SKILL}


@SOLVERS
def test_max_visits_per_agent_is_a_hard_limit(solver: str) -> None:
    jobs = [visit(f"v{k}", east(0.5 * (k + 1))) for k in range(5)]
    solution = solve([agent(max_jobs=2)], jobs, solver)
    assert len(order(solution)) == 2
    assert list(reasons(solution).values()) == [r.Reason.CAPACITY] * 3


@SOLVERS
def test_impossible_visits_are_reported_with_a_reason_not_an_error(solver: str) -> None:
    jobs = [r.Job("no-window", east(1), 20 * 60, windows=[]),
            visit("after-hours", east(1), [(19 * HOUR, 20 * HOUR)]),
            visit("too-far", east(400)),
            visit("fine", east(2))]  # fmt: skip
    solution = solve([agent()], jobs, solver)
    assert order(solution) == ["fine"]
    assert reasons(solution) == {"no-window": r.Reason.NO_WINDOW, "after-hours": r.Reason.UNREACHABLE,
                                 "too-far": r.Reason.UNREACHABLE}  # fmt: skip
    assert all(u.reason for u in solution.unassigned)


def test_no_agents_at_all_is_an_empty_plan() -> None:
    solution = r.solve(r.RoutingProblem([], [visit("v", east(1))], CITY))
    assert solution.routes == []
    assert reasons(solution) == {"v": r.Reason.NO_SKILL}


@SOLVERS
def test_when_not_everything_fits_the_important_visits_are_kept(solver: str) -> None:
    # Four visits of 2 h in one 9 h shift: two fit. The far ones matter most.
    jobs = [visit("near-low", east(1), priority=10, service_s=2 * HOUR + 1800),
            visit("near-low-2", east(1.5), priority=5, service_s=2 * HOUR + 1800),
            visit("far-high", east(12), priority=90, service_s=2 * HOUR + 1800),
            visit("far-high-2", east(12, 1), priority=80, service_s=2 * HOUR + 1800)]  # fmt: skip
    solution = solve([agent(max_jobs=2)], jobs, solver)
    assert sorted(order(solution)) == ["far-high", "far-high-2"]


@SOLVERS
def test_several_windows_a_day_are_honoured(solver: str) -> None:
    split = [(9 * HOUR, 9 * HOUR + 600), (17 * HOUR, 17 * HOUR + 1800)]
    jobs = [visit("evening", east(8), split), visit("morning", east(1), [(9 * HOUR, 10 * HOUR)])]
    solution = solve([agent()], jobs, solver)
    stops = {s.job_id: s for s in solution.routes[0].stops}
    assert stops["evening"].service_start_s >= 17 * HOUR


def test_routes_report_float_distance_and_consistent_times() -> None:
    solution = solve([agent()], [visit("a", east(3)), visit("b", east(3, 2))], "vroom")
    (route,) = solution.routes
    expected = sum(
        CITY.distance(a, b) for a, b in [(HOME, east(3)), (east(3), east(3, 2)), (east(3, 2), HOME)]
    )
    assert route.distance == pytest.approx(expected)
    assert route.duration_s == route.end_s - route.start_s
    # Leaves home just in time: no waiting at the first door.
    assert route.stops[0].arrival_s == route.stops[0].service_start_s


def test_an_unknown_solver_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown solver"):
        r.solve(r.RoutingProblem([agent()], []), solver="magic")


def test_a_city_sized_day_is_split_into_territories_and_stays_valid() -> None:
    rng = random.Random(3)
    vehicles = [agent(f"A{k:02d}", max_jobs=12, breaks=[r.Break((12 * HOUR, 14 * HOUR), 45 * 60)])
                for k in range(24)]  # fmt: skip
    vehicles = [r.Vehicle(v.id, east(rng.uniform(-8, 8), rng.uniform(-5, 5)), None, DAY, 12, frozenset(), v.breaks)
                for v in vehicles]  # fmt: skip
    jobs = [visit(f"c{k}", east(rng.uniform(-10, 10), rng.uniform(-6, 6)), priority=rng.randint(1, 99))
            for k in range(1500)]  # fmt: skip
    solution = solve(vehicles, jobs, r.DEFAULT_SOLVER, seconds=8)
    planned = sum(len(route.stops) for route in solution.routes)
    assert planned >= 0.9 * 24 * 12
    kept = {s.job_id for route in solution.routes for s in route.stops}
    mean_kept = sum(j.priority for j in jobs if j.id in kept) / planned
    assert mean_kept > 70  # ranked by priority: far above the average case (50)


def test_the_hybrid_gives_days_without_breaks_to_pyvrp_and_days_with_breaks_to_vroom() -> None:
    jobs = [visit(f"v{k}", east(1 + k % 3, k // 3)) for k in range(6)]
    plain = solve([agent()], jobs, r.DEFAULT_SOLVER)
    lunch = r.Break(window=(12 * HOUR, 13 * HOUR), duration_s=45 * 60)
    with_break = solve([agent(breaks=[lunch])], jobs, r.DEFAULT_SOLVER)
    assert plain.solver == "pyvrp"
    assert with_break.solver.startswith("vroom")
    assert len(order(plain)) == len(order(with_break)) == 6


def test_an_engine_plan_the_day_does_not_allow_is_thrown_away() -> None:
    problem = r.RoutingProblem([agent(max_jobs=1)], [visit("a", east(1)), visit("b", east(2))], CITY)
    instance = build(problem.travel, problem.vehicles, problem.jobs, np.ones((1, 2), dtype=bool))
    assert engines._checked(instance, [[0]]) == [[0]]
    assert engines._checked(instance, [[0, 1]]) == [[]]  # two visits for an agent allowed one
    forbidden = build(problem.travel, [agent()], problem.jobs, np.array([[True, False]]))
    assert engines._checked(forbidden, [[0, 1]]) == [[]]  # b is not this agent's to take
