"""Proof of visit, pure: distances, clock correction, the geofence and the spoofing flags."""

from datetime import UTC, datetime, timedelta

import pytest

from services.visits import proof
from services.visits.proof import Fix, FlagCode, Limits

LIMITS = Limits(geofence_m=200, accuracy_allowance_m=100, max_travel_kmh=150, max_clock_skew_s=300)
T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def test_distance_matches_known_figures() -> None:
    assert proof.distance_m(22.5431, 113.9436, 22.5431, 113.9436) == 0
    one_degree_of_latitude = proof.distance_m(22.0, 114.0, 23.0, 114.0)
    assert one_degree_of_latitude == pytest.approx(111_195, rel=1e-4)
    shanghai_beijing = proof.distance_m(31.2304, 121.4737, 39.9042, 116.4074)
    assert shanghai_beijing == pytest.approx(1_067_000, rel=0.01)


def test_a_queued_check_in_keeps_its_time_and_the_clock_error_is_measured() -> None:
    received = T0 + timedelta(hours=5)
    # Checked in at T0, queued 5 h, device clock right: no error, true time kept.
    assert proof.corrected_time(T0, received, received) == (T0, 0.0)
    # Same, but the device clock runs 2 h behind: both of its readings are 2 h early.
    at, skew = proof.corrected_time(T0 - timedelta(hours=2), received - timedelta(hours=2), received)
    assert (at, skew) == (T0, 7200.0)


@pytest.mark.parametrize(
    ("distance", "accuracy", "refused"),
    [
        (None, 5, False),
        (199, 5, False),
        (206, 5, True),
        (290, 100, False),
        (301, 100, True),
        (350, 5000, True),
    ],
)
def test_geofence_with_the_accuracy_allowance(distance, accuracy, refused) -> None:
    reason = proof.geofence_refusal(distance, accuracy, LIMITS)
    assert (reason is not None) is refused
    if refused:
        assert reason.startswith(f"check-in is {distance:.0f} m from the visit address")


def test_device_flags() -> None:
    assert proof.device_flags(False, 10, 30, LIMITS) == []
    flags = proof.device_flags(True, 150, -400, LIMITS)
    assert [f.code for f in flags] == [
        FlagCode.MOCK_LOCATION,
        FlagCode.LOW_ACCURACY,
        FlagCode.STALE_DEVICE_TIME,
    ]
    assert flags[2].reason == "device clock 400 s ahead of server time (limit 300 s)"


def test_travel_is_checked_against_both_neighbours() -> None:
    here = Fix(22.0, 114.0, T0)
    near_before = Fix(22.0 + 10_000 / 111_195, 114.0, T0 - timedelta(hours=1))  # 10 km/h
    far_after = Fix(22.0 + 30_000 / 111_195, 114.0, T0 + timedelta(minutes=6))  # 300 km/h
    assert proof.travel_flag(here, [near_before], LIMITS) is None
    flag = proof.travel_flag(here, [near_before, far_after], LIMITS)
    assert flag is not None and flag.code is FlagCode.IMPOSSIBLE_TRAVEL
    assert flag.reason == "30.0 km in 6 min from the agent's next check-in (300 km/h, limit 150 km/h)"


def test_two_places_at_the_same_second_is_impossible_not_a_division_by_zero() -> None:
    flag = proof.travel_flag(Fix(22.0, 114.0, T0), [Fix(22.01, 114.0, T0)], LIMITS)
    assert flag is not None and "1.1 km in 1 s" in flag.reason


def test_reasons_never_carry_a_position() -> None:
    flag = proof.travel_flag(Fix(22.54321, 113.94361, T0), [Fix(23.12345, 113.26543, T0)], LIMITS)
    assert "22.54" not in flag.reason and "113.9" not in flag.reason
