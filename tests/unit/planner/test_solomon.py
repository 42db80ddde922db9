"""Solomon instances through the planner's routing code, judged by the independent checker."""

import json
from pathlib import Path

import pytest

from services.planner import routing as r
from services.planner import solomon
from tests.routecheck import check_solomon, load_solomon, solomon_distance

INSTANCES = Path("/work/shared/benchmarks/solomon/instances")
pytestmark = pytest.mark.skipif(
    not INSTANCES.exists(), reason="the team's Solomon benchmark folder is absent"
)


def test_c101_through_the_cli_reaches_the_best_known_distance(tmp_path: Path) -> None:
    out = tmp_path / "routes.json"
    assert solomon.main([str(INSTANCES / "C101.txt"), "--time-limit", "3", "--out", str(out)]) == 0
    routes = json.loads(out.read_text())
    assert check_solomon(INSTANCES / "C101.txt", routes) == []
    assert solomon_distance(INSTANCES / "C101.txt", routes) == pytest.approx(828.94, abs=0.01)


@pytest.mark.parametrize(("name", "solver"), [("R101", "vroom"), ("RC201", "ortools"), ("C201", "hybrid")])
def test_every_solver_gives_valid_routes(name: str, solver: str) -> None:
    instance = solomon.parse(INSTANCES / f"{name}.txt")
    routes, seconds = solomon.solve_instance(instance, time_limit_s=1.5, solver=solver)
    assert check_solomon(INSTANCES / f"{name}.txt", routes) == []
    assert seconds < 2.0
    assert solomon.distance(instance, routes) == pytest.approx(
        solomon_distance(INSTANCES / f"{name}.txt", routes)
    )


def test_the_adapter_only_translates_the_instance() -> None:
    instance = solomon.parse(INSTANCES / "R101.txt")
    problem = solomon.problem_of(instance)
    assert len(problem.vehicles) == 25 and {v.capacity for v in problem.vehicles} == {200}
    first = problem.jobs[0]
    assert (first.windows[0], first.service_s, first.demand) == ((161_000, 171_000), 10_000, 10)
    assert isinstance(problem.travel, r.EuclideanTravel)


def test_the_checker_rejects_late_overloaded_or_incomplete_routes() -> None:
    data = load_solomon(INSTANCES / "R101.txt")
    everyone = [c.id for c in data.customers]
    assert any("due" in p for p in check_solomon(data, [everyone]))
    assert any("capacity" in p for p in check_solomon(data, [everyone]))
    assert any("exactly once" in p for p in check_solomon(data, [everyone[:-1]]))
    assert any("exactly once" in p for p in check_solomon(data, [everyone, [everyone[0]]]))
