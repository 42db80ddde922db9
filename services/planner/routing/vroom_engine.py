"""VROOM (pyvroom) as an engine: instance in, order of visits per agent out."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import vroom

from services.planner.routing.instance import Instance, Plan
from services.planner.routing.model import Job, Vehicle

PROFILE = "car"
MAX_PRIORITY = 100  # VROOM's range


def solve_vroom(instance: Instance, seconds: float, threads: int, exploration_level: int = 5) -> Plan:
    model = vroom.Input()
    # VROOM keeps matrices as 32-bit unsigned integers; the instance's fit (checked by build).
    model.set_durations_matrix(profile=PROFILE, matrix_input=instance.seconds.astype(np.uint32))
    model.set_costs_matrix(profile=PROFILE, matrix_input=instance.costs.astype(np.uint32))
    vehicle_skills, job_skills = _skills(instance.allowed)
    capacity = _capacity(instance)
    for v, vehicle in enumerate(instance.vehicles):
        model.add_vehicle(_vehicle(instance, v, vehicle, vehicle_skills[v], capacity))
    model.add_job([_job(instance, j, job, job_skills[j], capacity) for j, job in enumerate(instance.jobs)])
    result = model.solve(
        exploration_level=exploration_level, nb_threads=threads, timeout=timedelta(seconds=max(seconds, 0.01))
    )
    return _plan(instance, result)


def _skills(allowed: np.ndarray) -> tuple[list[set[int]], list[set[int]]]:
    """Encode "which agents may take this visit" as VROOM skills: one skill per distinct set of
    agents; a job needs its set's skill, every agent in the set has it."""
    ids: dict[bytes, int] = {}
    vehicle_skills: list[set[int]] = [set() for _ in range(allowed.shape[0])]
    job_skills: list[set[int]] = []
    for column in allowed.T:
        if column.all():
            job_skills.append(set())
            continue
        key = np.packbits(column).tobytes()
        if key not in ids:
            ids[key] = len(ids) + 1
            for v in np.flatnonzero(column):
                vehicle_skills[v].add(ids[key])
        job_skills.append({ids[key]})
    return vehicle_skills, job_skills


def _capacity(instance: Instance) -> int | None:
    """One load dimension when any visit has a demand; agents without a capacity are unbounded."""
    total = sum(job.demand for job in instance.jobs)
    return total if total > 0 else None


def _vehicle(
    instance: Instance, v: int, vehicle: Vehicle, skills: set[int], total: int | None
) -> vroom.Vehicle:
    capacity = [] if total is None else [vehicle.capacity if vehicle.capacity is not None else total]
    breaks = [vroom.Break(k, time_windows=[vroom.TimeWindow(*b.window)], service=b.duration_s)
              for k, b in enumerate(vehicle.breaks)]  # fmt: skip
    return vroom.Vehicle(
        v,
        start=instance.start(v),
        end=instance.end(v),
        time_window=vroom.TimeWindow(*vehicle.shift),
        skills=skills,
        capacity=capacity,
        breaks=breaks,
        **({} if vehicle.max_jobs is None else {"max_tasks": vehicle.max_jobs}),
    )


def _job(instance: Instance, j: int, job: Job, skills: set[int], total: int | None) -> vroom.Job:
    return vroom.Job(
        j,
        location=instance.node(j),
        default_service=job.service_s,
        time_windows=[vroom.TimeWindow(*w) for w in job.windows],
        priority=max(0, min(MAX_PRIORITY, job.priority)),
        skills=skills,
        delivery=vroom.Amount([] if total is None else [job.demand]),
    )


def _plan(instance: Instance, result: vroom.Solution) -> Plan:
    frame = result.routes
    jobs = frame[frame["type"] == "job"]
    plan: Plan = [[] for _ in instance.vehicles]
    for vehicle_id, job_id in zip(jobs["vehicle_id"], jobs["id"], strict=True):
        plan[int(vehicle_id)].append(int(job_id))
    return plan
