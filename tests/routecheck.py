"""An independent checker of Solomon VRPTW routes (its own arithmetic, not the solver's word)."""

from __future__ import annotations

import math

from services.planner.solomon import Instance

EPS = 1e-6


def check_solomon(instance: Instance, routes: list[list[int]]) -> list[str]:
    """Every violation of the benchmark's conventions; empty when the routes are valid."""
    problems: list[str] = []
    by_id = {c.id: c for c in instance.customers}
    served = [c for route in routes for c in route]
    if sorted(served) != sorted(by_id):
        problems.append("not every customer served exactly once")
    if len(routes) > instance.vehicles:
        problems.append(f"{len(routes)} routes for {instance.vehicles} vehicles")
    depot = instance.depot
    for n, route in enumerate(routes):
        if sum(by_id[c].demand for c in route if c in by_id) > instance.capacity:
            problems.append(f"route {n}: over capacity")
        clock, here = float(depot.ready), depot
        for cid in route:
            customer = by_id.get(cid)
            if customer is None:
                problems.append(f"route {n}: unknown customer {cid}")
                break
            clock = max(clock + math.dist((here.x, here.y), (customer.x, customer.y)), customer.ready)
            if clock > customer.due + EPS:
                problems.append(f"route {n}: customer {cid} served at {clock:.3f} after due {customer.due}")
            clock += customer.service
            here = customer
        back = clock + math.dist((here.x, here.y), (depot.x, depot.y))
        if back > depot.due + EPS:
            problems.append(f"route {n}: back at the depot at {back:.3f} after {depot.due}")
    return problems
