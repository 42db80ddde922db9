"""Solomon instances through the planner's routing code, judged by the independent checker."""

import json
from pathlib import Path

import pytest

from services.planner import solomon
from tests.routecheck import check_solomon

INSTANCES = Path(__file__).resolve().parents[3].parent / "shared" / "benchmarks" / "solomon" / "instances"
pytestmark = pytest.mark.skipif(
    not INSTANCES.exists(), reason="the team's benchmark folder is not beside the repo"
)


def test_c101_is_solved_to_the_best_known_distance(tmp_path) -> None:
    out = tmp_path / "routes.json"
    assert solomon.main([str(INSTANCES / "C101.txt"), "--time-limit", "5", "--out", str(out)]) == 0
    instance = solomon.parse(INSTANCES / "C101.txt")
    routes = json.loads(out.read_text())
    assert check_solomon(instance, routes) == []
    assert solomon.distance(instance, routes) == pytest.approx(828.94, abs=0.01)


def test_the_checker_rejects_a_late_or_incomplete_route() -> None:
    instance = solomon.parse(INSTANCES / "R101.txt")
    everyone = [c.id for c in instance.customers]
    assert any("due" in p for p in check_solomon(instance, [everyone]))
    assert any("exactly once" in p for p in check_solomon(instance, [everyone[:-1]]))
