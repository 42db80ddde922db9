"""Travel models: how long a leg takes (integer seconds, rounded up) and what it costs.

Solvers need integers. Travel times are rounded *up*, so a route feasible in the integer model
is feasible in exact arithmetic too; costs are rounded to the nearest integer of a fine unit
(metres, or thousandths of a plane unit) so that the optimum is not distorted. Distances are
reported in floating point by `distance`, recomputed leg by leg, never from the integer costs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Matrices:
    seconds: np.ndarray  # int64, travel time of each leg, rounded up
    costs: np.ndarray  # int64, what the solvers minimise


class Travel(Protocol):
    def matrices(self, origins: Sequence[Location], destinations: Sequence[Location]) -> Matrices:
        """Integer travel seconds and costs from every origin to every destination."""
        ...

    def distance(self, a: Location, b: Location) -> float:
        """The leg's distance in floating point (the unit the model reports)."""
        ...


def _coordinates(points: Sequence[Location]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([p.lat for p in points], dtype=float), np.array([p.lon for p in points], dtype=float)


@dataclass(frozen=True, slots=True)
class HaversineTravel:
    """Great-circle distance times a road factor, driven at a constant speed; costs in metres."""

    speed_kmh: float = 25.0
    road_factor: float = 1.35

    def road_metres(self, origins: Sequence[Location], destinations: Sequence[Location]) -> np.ndarray:
        lat1, lon1 = (np.radians(c) for c in _coordinates(origins))
        lat2, lon2 = (np.radians(c) for c in _coordinates(destinations))
        h = (
            np.sin((lat2[None, :] - lat1[:, None]) / 2) ** 2
            + np.cos(lat1)[:, None] * np.cos(lat2)[None, :] * np.sin((lon2[None, :] - lon1[:, None]) / 2) ** 2
        )
        return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))) * self.road_factor

    def matrices(self, origins: Sequence[Location], destinations: Sequence[Location]) -> Matrices:
        metres = self.road_metres(origins, destinations)
        seconds = np.ceil(metres / (self.speed_kmh / 3.6) - 1e-9)
        return Matrices(seconds.astype(np.int64), np.rint(metres).astype(np.int64))

    def distance(self, a: Location, b: Location) -> float:
        return haversine_m(a, b) * self.road_factor


@dataclass(frozen=True, slots=True)
class EuclideanTravel:
    """Plane distance between points read as (x = lon, y = lat); travel time = distance.

    `scale` is how many integer time units make one unit of distance (1000 reproduces
    Solomon's unrounded Euclidean distances to a thousandth in the solvers' integer model).
    """

    scale: float = 1.0

    def matrices(self, origins: Sequence[Location], destinations: Sequence[Location]) -> Matrices:
        y1, x1 = _coordinates(origins)
        y2, x2 = _coordinates(destinations)
        scaled = np.hypot(x1[:, None] - x2[None, :], y1[:, None] - y2[None, :]) * self.scale
        # A hair below the ceiling: an exact integer distance must not round up by float noise.
        seconds = np.ceil(scaled - 1e-6)
        return Matrices(seconds.astype(np.int64), np.rint(scaled).astype(np.int64))

    def distance(self, a: Location, b: Location) -> float:
        return math.hypot(a.lon - b.lon, a.lat - b.lat)


def haversine_m(a: Location, b: Location) -> float:
    """Great-circle metres between two points."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlon = lat2 - lat1, math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))
