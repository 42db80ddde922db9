"""The routing engine: agents' days as a vehicle-routing problem with time windows.

Pure (no database, no Kafka). The planner builds a `RoutingProblem` — agents (`Vehicle`:
home base, shift, max visits, skills, break), visits (`Job`: place, service time, windows,
priority, skills) and a travel model (`HaversineTravel` for a city, `EuclideanTravel` for
benchmarks) — with times in integer seconds from an epoch of its choice, and `solve` returns
each agent's timed route and every visit left out with the reason. VROOM, OR-Tools and PyVRP
sit behind the same call (`solver="vroom" | "ortools" | "pyvrp" | "hybrid"`); see
docs/planner.md.
"""

from services.planner.routing.core import DEFAULT_SOLVER, solve
from services.planner.routing.engines import SOLVERS
from services.planner.routing.model import (
    REASON_TEXT,
    Break,
    BreakTaken,
    Job,
    Reason,
    Route,
    RoutingProblem,
    Solution,
    Stop,
    Unassigned,
    Vehicle,
    Window,
)
from services.planner.routing.travel import EuclideanTravel, HaversineTravel, Location, Travel, haversine_m

__all__ = [
    "DEFAULT_SOLVER",
    "REASON_TEXT",
    "SOLVERS",
    "Break",
    "BreakTaken",
    "EuclideanTravel",
    "HaversineTravel",
    "Job",
    "Location",
    "Reason",
    "Route",
    "RoutingProblem",
    "Solution",
    "Stop",
    "Travel",
    "Unassigned",
    "Vehicle",
    "Window",
    "haversine_m",
    "solve",
]
