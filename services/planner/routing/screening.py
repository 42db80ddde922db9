"""Before any solver runs: which agent could ever take which visit, and why some nobody can.

Vectorised over agents × visits (a city day has millions of pairs). A pair is possible when
the agent has the skills, the load fits, and a day holding only that visit — straight from
home, straight back, with the breaks' time — meets one of the visit's windows within the
shift. That is a necessary condition, so a visit screened out is certainly impossible; one
that passes may still be left out by the solver, for time or capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.planner.routing.model import Job, Reason, RoutingProblem, Vehicle


@dataclass(frozen=True, slots=True)
class Screening:
    allowed: np.ndarray  # bool [vehicles, jobs]: the agent could take the visit on an empty day
    to_job_s: np.ndarray  # int64 [vehicles, jobs]: travel from each agent's start
    reasons: dict[int, Reason]  # job index -> why no agent can ever take it


def screen(problem: RoutingProblem) -> Screening:
    vehicles, jobs = problem.vehicles, problem.jobs
    to_job = problem.travel.matrices([v.start for v in vehicles], [j.location for j in jobs]).seconds
    back = problem.travel.matrices([j.location for j in jobs], [v.home for v in vehicles]).seconds.T
    qualified = _qualified(vehicles, jobs)
    reachable = _reachable(vehicles, jobs, to_job, back)
    allowed = qualified & reachable
    reasons: dict[int, Reason] = {}
    for j, job in enumerate(jobs):
        if not job.windows:
            reasons[j] = Reason.NO_WINDOW
        elif not qualified[:, j].any():
            reasons[j] = Reason.NO_SKILL
        elif not allowed[:, j].any():
            reasons[j] = Reason.UNREACHABLE
    return Screening(allowed, to_job, reasons)


def _qualified(vehicles: Sequence[Vehicle], jobs: Sequence[Job]) -> np.ndarray:
    """Skills and load, computed once per distinct requirement (there are few of them)."""
    result = np.zeros((len(vehicles), len(jobs)), dtype=bool)
    by_need: dict[tuple[frozenset[str], int], list[int]] = {}
    for j, job in enumerate(jobs):
        by_need.setdefault((job.skills, job.demand), []).append(j)
    for (skills, demand), members in by_need.items():
        able = np.array(
            [skills <= v.skills and (v.capacity is None or demand <= v.capacity) for v in vehicles]
        )
        result[:, members] = able[:, None]
    return result


def _reachable(
    vehicles: Sequence[Vehicle], jobs: Sequence[Job], to_job: np.ndarray, back: np.ndarray
) -> np.ndarray:
    shift_start = np.array([v.shift[0] for v in vehicles], dtype=np.int64)[:, None]
    shift_end = np.array([v.shift[1] for v in vehicles], dtype=np.int64)[:, None]
    pauses = np.array([sum(b.duration_s for b in v.breaks) for v in vehicles], dtype=np.int64)[:, None]
    service = np.array([j.service_s for j in jobs], dtype=np.int64)[None, :]
    # The breaks must fit in the day too; where exactly they go is the solver's business.
    fits_day = shift_start + to_job + service + back + pauses <= shift_end
    result = np.zeros_like(fits_day)
    for opens, closes in _window_columns(jobs):
        start = np.maximum(shift_start + to_job, opens[None, :])
        result |= (start <= closes[None, :]) & (start + service + back <= shift_end)
    return result & fits_day


def _window_columns(jobs: Sequence[Job]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The k-th window of every job as two arrays (a job with fewer windows gets an empty one)."""
    most = max((len(j.windows) for j in jobs), default=0)
    columns = []
    for k in range(most):
        windows = [sorted(j.windows)[k] if k < len(j.windows) else (1, 0) for j in jobs]
        columns.append(
            (
                np.array([w[0] for w in windows], dtype=np.int64),
                np.array([w[1] for w in windows], dtype=np.int64),
            )
        )
    return columns
