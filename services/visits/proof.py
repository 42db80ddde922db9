"""Proof of visit: where and when a check-in happened, and what about it looks spoofed.

Pure functions (no I/O): the handler gathers the facts, these turn them into a refusal
reason or supervisor flags. Reasons carry distances, speeds and durations only, never a
position (location tracks are sensitive personal data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

EARTH_RADIUS_M = 6_371_008.8
GEOFENCE_RULE = "visits.geofence"


class FlagCode(StrEnum):
    MOCK_LOCATION = "mock_location"
    LOW_ACCURACY = "low_accuracy"
    STALE_DEVICE_TIME = "stale_device_time"
    IMPOSSIBLE_TRAVEL = "impossible_travel"
    REPLAYED_COORDINATES = "replayed_coordinates"
    ADDRESS_NOT_GEOCODED = "address_not_geocoded"
    VISIT_CANCELLED = "visit_cancelled"


@dataclass(frozen=True, slots=True)
class Flag:
    code: FlagCode
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code.value, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Limits:
    geofence_m: float
    accuracy_allowance_m: float
    max_travel_kmh: float
    max_clock_skew_s: float


@dataclass(frozen=True, slots=True)
class Fix:
    """A position at an instant (the instant on the server's clock)."""

    lat: float
    lon: float
    at: datetime


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), good to a few metres at city scale."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def corrected_time(
    device_time: datetime, device_clock: datetime, received_at: datetime
) -> tuple[datetime, float]:
    """When the check-in happened on the server's clock, and the device clock's error (s).

    `device_clock` is the device's clock when the request left it: the difference to our
    receipt time is the clock's error, whatever time the request spent in an offline queue.
    The time spent queued is measured on the device's own clock, so its error cancels out.
    """
    queued = device_clock - device_time
    return received_at - queued, (received_at - device_clock).total_seconds()


def geofence_refusal(distance: float | None, accuracy_m: float, limits: Limits) -> str | None:
    """Why a check-in is too far from the address, or None when it is near enough.

    The fix's own uncertainty widens the fence, but only up to the allowance: a fix that
    claims to be accurate to 5 km does not make every door 5 km wide.
    """
    if distance is None:
        return None
    fence = limits.geofence_m + min(accuracy_m, limits.accuracy_allowance_m)
    if distance <= fence:
        return None
    return f"check-in is {distance:.0f} m from the visit address; the limit is {fence:.0f} m"


def device_flags(mock_location: bool, accuracy_m: float, skew_s: float, limits: Limits) -> list[Flag]:
    flags = []
    if mock_location:
        flags.append(Flag(FlagCode.MOCK_LOCATION, "the device reported a mock (simulated) location"))
    if accuracy_m > limits.accuracy_allowance_m:
        flags.append(
            Flag(
                FlagCode.LOW_ACCURACY,
                f"position accuracy {accuracy_m:.0f} m is worse than {limits.accuracy_allowance_m:.0f} m",
            )
        )
    if abs(skew_s) > limits.max_clock_skew_s:
        direction = "behind" if skew_s > 0 else "ahead of"
        flags.append(
            Flag(
                FlagCode.STALE_DEVICE_TIME,
                f"device clock {abs(skew_s):.0f} s {direction} server time "
                f"(limit {limits.max_clock_skew_s:.0f} s)",
            )
        )
    return flags


def travel_flag(current: Fix, neighbours: list[Fix], limits: Limits) -> Flag | None:
    """Flag when reaching (or leaving) the agent's previous or next check-in needs an impossible speed."""
    for other in neighbours:
        metres = distance_m(current.lat, current.lon, other.lat, other.lon)
        seconds = max(abs((current.at - other.at).total_seconds()), 1.0)
        kmh = metres / seconds * 3.6
        if kmh > limits.max_travel_kmh:
            which = "previous" if other.at <= current.at else "next"
            return Flag(
                FlagCode.IMPOSSIBLE_TRAVEL,
                f"{metres / 1000:.1f} km in {_duration(seconds)} from the agent's {which} check-in "
                f"({kmh:.0f} km/h, limit {limits.max_travel_kmh:.0f} km/h)",
            )
    return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
