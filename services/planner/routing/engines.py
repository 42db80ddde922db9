"""The solvers behind one call: VROOM, OR-Tools, PyVRP, or the best of them ("hybrid").

"hybrid", the default, uses each for what it does best within the one budget:
- a day PyVRP models exactly (no breaks: the Solomon set, days planned without a pause) goes to
  its iterated local search, on both cores — one run here, one with another seed in a helper
  process — and the better plan wins. On the Solomon set it ends within a fraction of a percent
  of the best known distances, where VROOM + OR-Tools stayed near 2 % (docs/planner.md);
- a day with breaks (every agent's day) goes to VROOM, which models them natively:
  1. VROOM builds a plan (its multi-start local search is quick and strong);
  2. when that plan leaves agents idle, VROOM builds a second one with every route capped at
     ceil(visits / (routes + 1)) — spreading the day over one more agent. VROOM packs visits
     into few long routes; on days of wide windows the shortest plans often use more of them;
  3. OR-Tools' guided local search polishes both plans at once, one per core (the second in a
     helper process: the solvers hold the GIL); with a single plan the helper polishes it too,
     with another penalty weight, for a second opinion;
  4. the best plan wins: most priority kept, then most visits, then least cost.
Every step gets only what is left of the deadline; the caps of step 2 only tighten the real
constraints, so its plan is valid for the real day. A PyVRP plan is checked against the day
(who may take what, visit counts, the timing of schedule.py) before it may win.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from services.planner.routing import pyvrp_engine
from services.planner.routing.instance import Instance, Plan
from services.planner.routing.ortools_engine import LAMBDA, solve_ortools
from services.planner.routing.pyvrp_engine import solve_pyvrp
from services.planner.routing.schedule import timeline
from services.planner.routing.vroom_engine import solve_vroom

SOLVERS = ("vroom", "ortools", "pyvrp", "hybrid")
FIRST_BUILD_SHARE = 0.35  # of the budget VROOM may use for its first plan (it usually needs less)
SECOND_BUILD_SHARE = 0.2  # and for the spread-out plan
MIN_POLISH_S = 0.2  # below this OR-Tools could not improve anything worth its model build
POLISH_S_PER_JOB = 0.1  # guided local search never stops by itself: small days get a short one
HELPER_LAMBDA = 0.3  # the helper's penalty weight when it polishes the same plan
HELPER_MARGIN_S = 0.15  # the helper's result travels back through a pipe
HELPER_SEED = 2  # the helper's PyVRP run searches from another seed than ours (1)


def run(instance: Instance, solver: str, seconds: float, threads: int) -> tuple[Plan, str]:
    """The best plan the solver finds in `seconds`, and the engine that found it."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
    if not instance.jobs or not instance.vehicles:
        return [[] for _ in instance.vehicles], solver
    if solver == "vroom":
        return solve_vroom(instance, seconds, threads), "vroom"
    if solver == "ortools":
        return solve_ortools(instance, _polish_time(instance, seconds)), "ortools"
    if solver == "pyvrp":
        if not pyvrp_engine.applies(instance):
            return solve_vroom(instance, seconds, threads), "vroom"  # it cannot model breaks
        return _checked(instance, solve_pyvrp(instance, _polish_time(instance, seconds))), "pyvrp"
    if pyvrp_engine.applies(instance):
        return _local_search(instance, seconds, threads)
    return _hybrid(instance, seconds, threads)


def _polish_time(instance: Instance, left: float) -> float:
    return min(left, max(MIN_POLISH_S, POLISH_S_PER_JOB * len(instance.jobs)))


def _local_search(instance: Instance, seconds: float, threads: int) -> tuple[Plan, str]:
    """PyVRP here and, with a second core, PyVRP with another seed in the helper process."""
    deadline = time.monotonic() + seconds
    left = _polish_time(instance, seconds)
    helper = _Helper() if threads > 1 and left >= 1.0 else None
    try:
        asked = helper is not None and helper.ask("pyvrp", instance, time.monotonic() + left, HELPER_SEED)
        candidates = [(_checked(instance, solve_pyvrp(instance, left)), "pyvrp")]
        helped = helper.result(deadline) if helper is not None and asked else None
        if helped is not None:
            candidates.append((_checked(instance, helped), "pyvrp"))
    finally:
        if helper is not None:
            helper.close()
    best = min(candidates, key=lambda candidate: instance.score(candidate[0]))
    if any(best[0]):
        return best
    # Nothing placed (no feasible plan found in time): VROOM's quick construction instead.
    return solve_vroom(instance, max(deadline - time.monotonic(), MIN_POLISH_S), threads), "vroom"


def _checked(instance: Instance, plan: Plan) -> Plan:
    """The plan if the day allows it as it is (an engine's word is not enough), else none."""
    if all(_fits(instance, v, order) for v, order in enumerate(plan) if order):
        return plan
    return [[] for _ in plan]


def _fits(instance: Instance, v: int, order: list[int]) -> bool:
    vehicle = instance.vehicles[v]
    jobs = [instance.jobs[j] for j in order]
    return (
        len(set(order)) == len(order)
        and all(instance.allowed[v, j] for j in order)
        and (vehicle.max_jobs is None or len(order) <= vehicle.max_jobs)
        and (vehicle.capacity is None or sum(job.demand for job in jobs) <= vehicle.capacity)
        and timeline(vehicle, jobs, instance.legs_s(v, order)) is not None
    )


def _hybrid(instance: Instance, seconds: float, threads: int) -> tuple[Plan, str]:
    deadline = time.monotonic() + seconds
    polish_s = _polish_time(instance, seconds * (1 - FIRST_BUILD_SHARE - SECOND_BUILD_SHARE))
    helper = _Helper() if threads > 1 and polish_s >= 1.0 else None
    try:
        candidates = [(solve_vroom(instance, seconds * FIRST_BUILD_SHARE, threads), "vroom")]
        spread = _spread(instance, candidates[0][0], seconds * SECOND_BUILD_SHARE, deadline, threads)
        if spread is not None:
            candidates.append((spread, "vroom-spread"))
        candidates += _polish(instance, candidates, deadline, helper)
    finally:
        if helper is not None:
            helper.close()
    return min(candidates, key=lambda candidate: instance.score(candidate[0]))


def _spread(instance: Instance, plan: Plan, budget: float, deadline: float, threads: int) -> Plan | None:
    """VROOM again with every route capped so that the visits need one more route."""
    routes = sum(1 for order in plan if order)
    placed = sum(len(order) for order in plan)
    left = min(budget, deadline - time.monotonic())
    if routes + 1 > instance.size or placed < 2 or left < MIN_POLISH_S:
        return None
    cap = math.ceil(placed / (routes + 1))
    capped = [
        replace(v, max_jobs=cap if v.max_jobs is None else min(v.max_jobs, cap)) for v in instance.vehicles
    ]
    return solve_vroom(replace(instance, vehicles=capped), left, threads)


def _polish(
    instance: Instance, candidates: list[tuple[Plan, str]], deadline: float, helper: _Helper | None
) -> list[tuple[Plan, str]]:
    ranked = sorted(candidates, key=lambda candidate: instance.score(candidate[0]))
    left = _polish_time(instance, deadline - time.monotonic())
    if left < MIN_POLISH_S:
        return []
    asked = False
    if helper is not None:
        second, lam = (ranked[1][0], LAMBDA) if len(ranked) > 1 else (ranked[0][0], HELPER_LAMBDA)
        asked = helper.ask("ortools", instance, time.monotonic() + left, second, lam)
    polished = [(solve_ortools(instance, left, initial=ranked[0][0]), f"{ranked[0][1]}+ortools")]
    helped = helper.result(deadline) if helper is not None and asked else None
    if helped is not None:
        polished.append((helped, f"{ranked[-1][1]}+ortools"))
    return polished


class _Helper:
    """A second process for a second polish (OR-Tools holds the GIL: threads would not help).

    Started before VROOM runs, so its imports overlap VROOM's work; it works to the caller's
    wall-clock deadline and is stopped when the call ends. Any failure only loses the second
    opinion.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # fork is unsafe under threads (asyncio, VROOM)
        self._conn, child = context.Pipe()
        self._process: BaseProcess | None = context.Process(target=_serve, args=(child,), daemon=True)
        try:
            self._process.start()
        except OSError:
            self._process = None

    def ask(self, task: str, instance: Instance, deadline: float, *args: object) -> bool:
        """Start `task` ("ortools": plan, lam; "pyvrp": seed) on the helper; False if there is none."""
        if self._process is None:
            return False
        self._conn.send((task, instance, _wall(deadline) - HELPER_MARGIN_S, args))
        return True

    def result(self, deadline: float) -> Plan | None:
        if self._process is None or not self._conn.poll(max(deadline - time.monotonic(), 0.0)):
            return None
        answer: Plan | None = self._conn.recv()
        return answer

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
        self._conn.close()


def _wall(deadline: float) -> float:
    """A monotonic deadline as wall-clock time, which the helper process shares."""
    return time.time() + (deadline - time.monotonic())


def _serve(conn: Connection) -> None:
    """The helper's loop: work on what it is sent until the wall-clock deadline it is given."""
    while True:
        try:
            task, instance, wall_deadline, args = conn.recv()
        except EOFError:
            return
        seconds = wall_deadline - time.time()
        if seconds < MIN_POLISH_S:
            conn.send(None)
        elif task == "pyvrp":
            conn.send(solve_pyvrp(instance, seconds, *args))
        else:
            conn.send(solve_ortools(instance, seconds, *args))
