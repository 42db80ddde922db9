"""PyVRP (iterated local search) as an engine: instance in, order of visits per agent out.

PyVRP models everything an agent's day has except breaks: shifts (vehicle windows), start and
end places, max visits and load (one capacity dimension each), several windows a visit (a group
of alternatives, one client per window, at most one visited), priorities (every visit optional,
its prize far above any detour and a priority point above all visits of lower priority — the
same order of concerns as the other engines) and who may take what (one profile per distinct
set of permitted visits, the rest unreachable in time). Days with breaks are not its to solve:
`applies` says so and the caller uses another engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyvrp
from pyvrp.stop import MaxRuntime

from services.planner.routing.instance import Instance, Plan


def applies(instance: Instance) -> bool:
    return not any(vehicle.breaks for vehicle in instance.vehicles)


def solve_pyvrp(instance: Instance, seconds: float, seed: int = 1) -> Plan:
    data, owners = _data(instance)
    # A unit of lateness or overload must be able to cost more than the largest prize, or the
    # search would rather keep an infeasible high-priority visit than find a feasible day.
    top_prize = max((client.prize for client in data.clients()), default=0)
    penalties = pyvrp.PenaltyParams(max_penalty=max(2.0 * top_prize, pyvrp.PenaltyParams().max_penalty))
    result = pyvrp.solve(data, stop=MaxRuntime(max(seconds, 0.01)), seed=seed, collect_stats=False,
                         params=pyvrp.SolveParams(penalty=penalties))  # fmt: skip
    plan: Plan = [[] for _ in instance.vehicles]
    if not result.is_feasible():
        return plan
    free = _vehicles_by_type(instance)
    for route in result.best.routes():
        v = free[route.vehicle_type()].pop(0)
        plan[v] = [owners[activity.idx] for activity in route.schedule() if activity.is_client()]
    return plan


def _data(instance: Instance) -> tuple[pyvrp.ProblemData, list[int]]:
    """The problem for PyVRP, and the visit (job index) behind each of its clients."""
    locations = [pyvrp.Location(0.0, 0.0) for _ in range(len(instance.seconds))]
    depots = [pyvrp.Depot(p) for p in range(instance.depots)]
    profiles, profile_of = _profiles(instance)
    dims = _dimensions(instance)
    clients, groups, owners = _clients(instance, dims)
    types = [_vehicle_type(instance, members, profile_of[members[0]], dims)
             for members in _vehicles_by_type(instance)]  # fmt: skip
    durations = [_forbidding(instance, allowed) for allowed in profiles]
    costs = [instance.costs] * len(profiles)
    return pyvrp.ProblemData(locations, clients, depots, types, costs, durations, groups), owners


def _profiles(instance: Instance) -> tuple[list[np.ndarray], list[int]]:
    """One profile per distinct row of `allowed` (which visits the agent may take)."""
    rows: dict[bytes, int] = {}
    patterns: list[np.ndarray] = []
    profile_of = []
    for row in instance.allowed:
        key = np.packbits(row).tobytes()
        if key not in rows:
            rows[key] = len(patterns)
            patterns.append(row)
        profile_of.append(rows[key])
    return patterns, profile_of


def _forbidding(instance: Instance, allowed: np.ndarray) -> np.ndarray:
    """Travel times where the visits this profile may not take are out of reach of any shift."""
    if allowed.all():
        return instance.seconds
    horizon = max(vehicle.shift[1] for vehicle in instance.vehicles) + 1
    seconds = instance.seconds.copy()
    nodes = [instance.node(int(j)) for j in np.flatnonzero(~allowed)]
    seconds[nodes, :] = horizon
    seconds[:, nodes] = horizon
    np.fill_diagonal(seconds, 0)
    return seconds


def _dimensions(instance: Instance) -> tuple[bool, bool]:
    """Which capacity dimensions the day needs: (load, number of visits)."""
    load = any(job.demand for job in instance.jobs)
    visits = any(vehicle.max_jobs is not None for vehicle in instance.vehicles)
    return load, visits


def _amounts(dims: tuple[bool, bool], load: int, visits: int) -> list[int]:
    return [amount for needed, amount in zip(dims, (load, visits), strict=True) if needed]


def _clients(
    instance: Instance, dims: tuple[bool, bool]
) -> tuple[list[pyvrp.Client], list[pyvrp.ClientGroup], list[int]]:
    detour = 2 * int(instance.costs.max(initial=0)) + 1
    per_priority = detour * (len(instance.jobs) + 1)
    clients: list[pyvrp.Client] = []
    groups: list[pyvrp.ClientGroup] = []
    owners: list[int] = []
    for j, job in enumerate(instance.jobs):
        prize = detour + per_priority * max(job.priority, 0)
        group = len(groups) if len(job.windows) > 1 else None
        members = []
        for opens, closes in job.windows:
            members.append(len(clients))
            clients.append(pyvrp.Client(
                instance.node(j), delivery=_amounts(dims, job.demand, 1), service_duration=job.service_s,
                tw_early=opens, tw_late=closes, prize=prize, required=False, group=group,
            ))  # fmt: skip
            owners.append(j)
        if group is not None:
            groups.append(pyvrp.ClientGroup(members, required=False))
    return clients, groups, owners


def _vehicles_by_type(instance: Instance) -> list[list[int]]:
    """Agents alike in everything PyVRP sees share a vehicle type (Solomon: 25 of one)."""
    types: dict[tuple[object, ...], list[int]] = {}
    for v, vehicle in enumerate(instance.vehicles):
        key = (instance.start(v), instance.end(v), vehicle.shift, vehicle.capacity, vehicle.max_jobs,
               np.packbits(instance.allowed[v]).tobytes())  # fmt: skip
        types.setdefault(key, []).append(v)
    return list(types.values())


def _vehicle_type(
    instance: Instance, members: Sequence[int], profile: int, dims: tuple[bool, bool]
) -> pyvrp.VehicleType:
    vehicle = instance.vehicles[members[0]]
    unbounded = len(instance.jobs) * max((job.demand for job in instance.jobs), default=0) + 1
    load = vehicle.capacity if vehicle.capacity is not None else unbounded
    visits = vehicle.max_jobs if vehicle.max_jobs is not None else len(instance.jobs)
    return pyvrp.VehicleType(
        len(members), capacity=_amounts(dims, load, visits), start_depot=instance.start(members[0]),
        end_depot=instance.end(members[0]), tw_early=vehicle.shift[0], tw_late=vehicle.shift[1],
        profile=profile,
    )  # fmt: skip
