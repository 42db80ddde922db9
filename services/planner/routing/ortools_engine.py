"""OR-Tools routing as an engine: instance in (optionally a plan to improve), plan out.

Costs and times go in as matrices registered on the C++ side (no Python callback per arc).
Every visit is optional with a penalty far above any detour, scaled by priority, so the search
keeps all it can, higher priorities first — the same order of concerns as VROOM's.
"""

from __future__ import annotations

import itertools

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from ortools.util import optional_boolean_pb2

from services.planner.routing.instance import Instance, Plan

TIME = "time"
LAMBDA = 0.1  # guided local search's penalty weight (OR-Tools' default, best in our runs)


def solve_ortools(
    instance: Instance, seconds: float, initial: Plan | None = None, lam: float = LAMBDA
) -> Plan:
    manager = pywrapcp.RoutingIndexManager(
        len(instance.seconds), instance.size, instance.starts, instance.ends
    )
    routing = pywrapcp.RoutingModel(manager)
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(instance.costs.tolist()))
    time_dimension = _add_time(instance, manager, routing)
    _add_breaks(instance, manager, routing, time_dimension)
    _add_counts(instance, routing)
    # Once a plan serves every visit, the search need not consider dropping any.
    optional = initial is None or sum(len(order) for order in initial) < len(instance.jobs)
    _add_allowed_and_penalties(instance, manager, routing, optional)
    parameters = _parameters(seconds, lam)
    if initial is not None:
        routing.CloseModelWithParameters(parameters)
        start = routing.ReadAssignmentFromRoutes(_indices(instance, manager, initial), True)
        if start is not None:
            found = routing.SolveFromAssignmentWithParameters(start, parameters)
            return _plan(instance, manager, routing, found)
    return _plan(instance, manager, routing, routing.SolveWithParameters(parameters))


def _service(instance: Instance) -> list[int]:
    return [0] * instance.depots + [job.service_s for job in instance.jobs]


def _add_time(
    instance: Instance, manager: pywrapcp.RoutingIndexManager, routing: pywrapcp.RoutingModel
) -> pywrapcp.RoutingDimension:
    # Leaving node i takes its service then the leg: the cumul at a visit is its service start.
    transit = (instance.seconds + np.array(_service(instance), dtype=np.int64)[:, None]).tolist()
    horizon = max(vehicle.shift[1] for vehicle in instance.vehicles)
    routing.AddDimension(routing.RegisterTransitMatrix(transit), horizon, horizon, False, TIME)
    dimension = routing.GetDimensionOrDie(TIME)
    for v, vehicle in enumerate(instance.vehicles):
        dimension.CumulVar(routing.Start(v)).SetRange(*vehicle.shift)
        dimension.CumulVar(routing.End(v)).SetRange(*vehicle.shift)
    for j, job in enumerate(instance.jobs):
        cumul = dimension.CumulVar(manager.NodeToIndex(instance.node(j)))
        windows = sorted(job.windows)
        cumul.SetRange(windows[0][0], windows[-1][1])
        for (_, closes), (opens, _) in itertools.pairwise(windows):
            if opens > closes + 1:
                cumul.RemoveInterval(closes + 1, opens - 1)
    return dimension


def _add_breaks(
    instance: Instance, manager: pywrapcp.RoutingIndexManager, routing: pywrapcp.RoutingModel,
    dimension: pywrapcp.RoutingDimension,
) -> None:  # fmt: skip
    if not any(vehicle.breaks for vehicle in instance.vehicles):
        return
    # A break may not overlap a visit's service: OR-Tools needs each index's visit part.
    service = _service(instance)
    visit = [service[manager.IndexToNode(index)] for index in range(routing.Size())]
    solver = routing.solver()
    for v, vehicle in enumerate(instance.vehicles):
        intervals = [solver.FixedDurationIntervalVar(b.window[0], b.window[1], b.duration_s, False, f"break {v}.{k}")
                     for k, b in enumerate(vehicle.breaks)]  # fmt: skip
        dimension.SetBreakIntervalsOfVehicle(intervals, v, visit)


def _add_counts(instance: Instance, routing: pywrapcp.RoutingModel) -> None:
    """Max visits per agent and load capacity, each as a counting dimension when needed."""
    node_count = len(instance.seconds)
    if any(vehicle.max_jobs is not None for vehicle in instance.vehicles):
        ones = [0] * instance.depots + [1] * len(instance.jobs)
        limits = [
            vehicle.max_jobs if vehicle.max_jobs is not None else node_count for vehicle in instance.vehicles
        ]
        routing.AddDimensionWithVehicleCapacity(
            routing.RegisterUnaryTransitVector(ones), 0, limits, True, "visits"
        )
    demands = [0] * instance.depots + [job.demand for job in instance.jobs]
    if any(demands):
        total = sum(demands)
        limits = [
            vehicle.capacity if vehicle.capacity is not None else total for vehicle in instance.vehicles
        ]
        routing.AddDimensionWithVehicleCapacity(
            routing.RegisterUnaryTransitVector(demands), 0, limits, True, "load"
        )


def _add_allowed_and_penalties(
    instance: Instance, manager: pywrapcp.RoutingIndexManager, routing: pywrapcp.RoutingModel, optional: bool,
) -> None:  # fmt: skip
    # Dropping any one visit must cost more than any detour it could save; a priority point more
    # than dropping every visit of lower priority — a lexicographic order in one integer.
    detour = 2 * int(instance.costs.max(initial=0)) + 1
    per_priority = detour * (len(instance.jobs) + 1)
    for j, job in enumerate(instance.jobs):
        index = manager.NodeToIndex(instance.node(j))
        if not instance.allowed[:, j].all():
            # -1 (unperformed) stays allowed when the visit may be left out.
            unperformed = [-1] if optional else []
            routing.VehicleVar(index).SetValues(
                [*unperformed, *(int(v) for v in instance.allowed[:, j].nonzero()[0])]
            )
        if optional:
            routing.AddDisjunction([index], detour + per_priority * max(job.priority, 0))


def _parameters(seconds: float, lam: float) -> pywrapcp.DefaultRoutingSearchParameters:
    parameters = pywrapcp.DefaultRoutingSearchParameters()
    strategies = routing_enums_pb2.FirstSolutionStrategy
    parameters.first_solution_strategy = strategies.PARALLEL_CHEAPEST_INSERTION
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    parameters.guided_local_search_lambda_coefficient = lam
    operators = parameters.local_search_operators
    # The insertion-based path LNS operators are slow at this size; without them GLS makes more
    # moves per second and ended lower on the Solomon set.
    off = optional_boolean_pb2.BOOL_FALSE
    operators.use_global_cheapest_insertion_path_lns = off
    operators.use_local_cheapest_insertion_path_lns = off
    operators.use_relocate_path_global_cheapest_insertion_insert_unperformed = off
    parameters.time_limit.FromMilliseconds(max(int(seconds * 1000), 10))
    return parameters


def _indices(instance: Instance, manager: pywrapcp.RoutingIndexManager, plan: Plan) -> list[list[int]]:
    return [[manager.NodeToIndex(instance.node(j)) for j in order] for order in plan]


def _plan(
    instance: Instance, manager: pywrapcp.RoutingIndexManager, routing: pywrapcp.RoutingModel,
    assignment: pywrapcp.Assignment | None,
) -> Plan:  # fmt: skip
    plan: Plan = [[] for _ in instance.vehicles]
    if assignment is None:
        return plan
    for v in range(instance.size):
        index = assignment.Value(routing.NextVar(routing.Start(v)))
        while not routing.IsEnd(index):
            plan[v].append(manager.IndexToNode(index) - instance.depots)
            index = assignment.Value(routing.NextVar(index))
    return plan
