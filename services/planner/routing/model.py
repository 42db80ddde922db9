"""The routing model: agents (vehicles), visits (jobs) and the plan of their day.

Times are integer seconds from an epoch the caller chooses (the caller converts local times
and time zones, and intersects each customer's legal contact hours into the job's windows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from services.planner.routing.travel import HaversineTravel, Location, Travel

Window = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Break:
    """A pause the agent must take once on a working day; `window` bounds when it starts."""

    window: Window
    duration_s: int


@dataclass(frozen=True, slots=True)
class Vehicle:
    """An agent: starts at `start`, ends at `end` (home base; None = back to `start`)."""

    id: str
    start: Location
    end: Location | None
    shift: Window
    max_jobs: int | None = None
    skills: frozenset[str] = frozenset()
    breaks: Sequence[Break] = ()
    capacity: int | None = None

    @property
    def home(self) -> Location:
        return self.end or self.start


@dataclass(frozen=True, slots=True)
class Job:
    """A visit. Higher `priority` (0–100) is kept first when not everything fits."""

    id: str
    location: Location
    service_s: int
    windows: Sequence[Window]
    priority: int = 0
    skills: frozenset[str] = frozenset()
    demand: int = 0


@dataclass(frozen=True, slots=True)
class RoutingProblem:
    vehicles: Sequence[Vehicle]
    jobs: Sequence[Job]
    travel: Travel = field(default_factory=HaversineTravel)


@dataclass(frozen=True, slots=True)
class Stop:
    job_id: str
    arrival_s: int
    service_start_s: int
    departure_s: int


@dataclass(frozen=True, slots=True)
class BreakTaken:
    start_s: int
    duration_s: int
    after_stops: int  # how many visits of the route come before it


@dataclass(frozen=True, slots=True)
class Route:
    vehicle_id: str
    stops: list[Stop]
    start_s: int  # leaves the start location
    end_s: int  # arrives at the end location
    travel_s: int
    distance: float  # in the travel model's unit: metres for a city, plane units for Solomon
    breaks: list[BreakTaken] = field(default_factory=list)

    @property
    def duration_s(self) -> int:
        return self.end_s - self.start_s


class Reason(StrEnum):
    NO_WINDOW = "no_window"
    NO_SKILL = "no_skill"
    UNREACHABLE = "unreachable"
    CAPACITY = "capacity"
    TIME = "time"


REASON_TEXT = {
    Reason.NO_WINDOW: "no lawful visit time on that day (contact rules, holidays or suppression)",
    Reason.NO_SKILL: "no available agent with the required skills (language, hardship training)",
    Reason.UNREACHABLE: "its window cannot be met even by the nearest qualified agent on an empty day",
    Reason.CAPACITY: "no capacity left: the qualified agents' visits went to higher-priority cases",
    Reason.TIME: "no room left in the qualified agents' days (travel, windows, break, shift end)",
}


@dataclass(frozen=True, slots=True)
class Unassigned:
    job_id: str
    reason: str
    code: Reason


def unassigned(job_id: str, code: Reason) -> Unassigned:
    return Unassigned(job_id, REASON_TEXT[code], code)


@dataclass(frozen=True, slots=True)
class Solution:
    routes: list[Route]
    unassigned: list[Unassigned]
    solver: str = ""  # the engine whose plan was kept

    @property
    def distance(self) -> float:
        return sum(route.distance for route in self.routes)
