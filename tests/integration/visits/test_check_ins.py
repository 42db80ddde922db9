"""Check-ins: geofence and contact hours refuse (and are still recorded), spoofing is flagged
for the supervisor, and every check-in is published as visit.checked_in."""

import uuid
from datetime import timedelta

import pytest

from shared.events import decode, topics
from tests.conftest import read_topic
from tests.integration.visits.conftest import HOME, at_local, north_of

pytestmark = pytest.mark.integration


async def stored(visits, checkin_id):
    [row] = await visits.fetch(
        "SELECT accepted, refusal_rule, refusal_reason, flags, checked_in_at FROM checkins WHERE checkin_id = $1",
        uuid.UUID(checkin_id),
    )
    return row


def codes(row):
    return sorted(f["code"] for f in row["flags"])


async def test_a_check_in_at_the_door_in_contact_hours_is_accepted(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    at = at_local(10, 30)
    r = await visits.check_in(agent_id, visit.visit_id, at=at, position=north_of(HOME, 40))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["accepted"] is True and body["refusal_rule"] is None
    assert 35 <= body["distance_m"] <= 45
    row = await stored(visits, body["checkin_id"])
    assert abs((row["checked_in_at"] - at).total_seconds()) < 5, "queued offline: keeps its true time"
    assert codes(row) == []


async def test_beyond_the_geofence_is_refused_with_the_reason_and_kept(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    r = await visits.check_in(agent_id, visit.visit_id, position=north_of(HOME, 1500))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["accepted"] is False and body["refusal_rule"] == "visits.geofence"
    assert body["refusal_reason"] == "check-in is 1500 m from the visit address; the limit is 208 m"
    row = await stored(visits, body["checkin_id"])
    assert row["accepted"] is False and row["refusal_rule"] == "visits.geofence", "refused, still recorded"


async def test_the_accuracy_of_the_fix_widens_the_fence_up_to_the_allowance(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    near = await visits.check_in(agent_id, visit.visit_id, position=north_of(HOME, 260), accuracy_m=80)
    assert near.json()["accepted"] is True
    vague = await visits.check_in(
        agent_id, visit.visit_id, position=north_of(HOME, 350), accuracy_m=5000, at=at_local(11)
    )
    assert vague.json()["accepted"] is False, "a 5 km fix does not make the door 5 km wide"
    assert "low_accuracy" in codes(await stored(visits, vague.json()["checkin_id"]))


async def test_outside_legal_contact_hours_is_refused_by_the_policy(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    r = await visits.check_in(agent_id, visit.visit_id, at=at_local(22, 30))
    body = r.json()
    assert r.status_code == 201 and body["accepted"] is False
    assert body["refusal_rule"] == "cn.quiet_hours"
    assert body["refusal_reason"]
    assert (await stored(visits, body["checkin_id"]))["accepted"] is False


async def test_mock_location_and_stale_device_time_are_flagged(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    r = await visits.check_in(agent_id, visit.visit_id, mock_location=True, clock_error=timedelta(hours=-2))
    body = r.json()
    assert body["accepted"] is True, "flags inform the supervisor; they do not refuse"
    row = await stored(visits, body["checkin_id"])
    assert codes(row) == ["mock_location", "stale_device_time"]
    stale = next(f for f in row["flags"] if f["code"] == "stale_device_time")
    assert "7200 s ahead of" not in stale["reason"] and "7200 s behind" in stale["reason"]
    assert abs((row["checked_in_at"] - at_local(10)).total_seconds()) < 5, (
        "device time corrected by its clock"
    )


async def test_impossible_travel_between_consecutive_check_ins_is_flagged(visits, agent_id) -> None:
    here = await visits.assign(agent_id, sequence=1)
    far_point = north_of(HOME, 40_000)
    far = await visits.assign(agent_id, sequence=2, location=far_point)
    first = await visits.check_in(agent_id, here.visit_id, at=at_local(10))
    second = await visits.check_in(agent_id, far.visit_id, at=at_local(10, 10), position=far_point)
    assert codes(await stored(visits, first.json()["checkin_id"])) == []
    row = await stored(visits, second.json()["checkin_id"])
    assert codes(row) == ["impossible_travel"]
    assert (
        "40.0 km in 10 min from the agent's previous check-in (240 km/h, limit 150 km/h)"
        in row["flags"][0]["reason"]
    )

    # Sent late (offline queue): a check-in between two others is compared with both.
    middle = await visits.check_in(agent_id, here.visit_id, at=at_local(10, 5), position=north_of(HOME, 10))
    assert codes(await stored(visits, middle.json()["checkin_id"])) == ["impossible_travel"]


async def test_a_plausible_journey_is_not_flagged(visits, agent_id) -> None:
    here = await visits.assign(agent_id, sequence=1)
    next_point = north_of(HOME, 5_000)
    there = await visits.assign(agent_id, sequence=2, location=next_point)
    await visits.check_in(agent_id, here.visit_id, at=at_local(9))
    r = await visits.check_in(agent_id, there.visit_id, at=at_local(9, 30), position=next_point)
    assert codes(await stored(visits, r.json()["checkin_id"])) == []


async def test_replayed_coordinates_are_flagged_whoever_sends_them(visits, agent_id) -> None:
    other = f"{agent_id}-b"
    mine, theirs = await visits.assign(agent_id), await visits.assign(other)
    fix = north_of(HOME, 12.345678)
    first = await visits.check_in(
        agent_id, mine.visit_id, position=fix, accuracy_m=7.25, at=at_local(9), exact=True
    )
    replay = await visits.check_in(
        other, theirs.visit_id, position=fix, accuracy_m=7.25, at=at_local(16), exact=True
    )
    assert codes(await stored(visits, first.json()["checkin_id"])) == []
    assert codes(await stored(visits, replay.json()["checkin_id"])) == ["replayed_coordinates"]


async def test_supervisors_see_their_teams_flags_only(visits, agent_id) -> None:
    team, other_team = f"T-{agent_id}", f"T-{agent_id}-x"
    mine = await visits.assign(agent_id, team=team)
    theirs = await visits.assign(f"{agent_id}-x", team=other_team)
    flagged = await visits.check_in(agent_id, mine.visit_id, mock_location=True)
    await visits.check_in(f"{agent_id}-x", theirs.visit_id, mock_location=True)
    await visits.check_in(agent_id, mine.visit_id, at=at_local(11))  # clean: not listed

    r = await visits.client.get("/v1/team/check-in-flags", headers=visits.supervisor(team))
    assert r.status_code == 200, r.text
    [listed] = r.json()
    assert listed["checkin_id"] == flagged.json()["checkin_id"]
    assert listed["agent_id"] == agent_id and listed["account_id"] == mine.account_id
    assert listed["flags"] == [
        {"code": "mock_location", "reason": "the device reported a mock (simulated) location"}
    ]

    no_team = await visits.client.get("/v1/team/check-in-flags", headers=visits.supervisor(None))
    assert no_team.status_code == 403
    as_agent = await visits.client.get("/v1/team/check-in-flags", headers=visits.agent(agent_id, team))
    assert as_agent.status_code == 403


async def test_check_ins_are_published_accepted_or_refused(visits, kafka_bootstrap, agent_id) -> None:
    visit = await visits.assign(agent_id)
    accepted = (await visits.check_in(agent_id, visit.visit_id, mock_location=True)).json()
    refused = (await visits.check_in(agent_id, visit.visit_id, at=at_local(7, 30))).json()

    def mine(records):
        return [decode(r.value, r.headers) for r in records if r.key == visit.account_id.encode()]

    records = await read_topic(kafka_bootstrap, topics.VISIT_OUTCOMES, lambda rs: len(mine(rs)) >= 2)
    events = {str(e.data.checkin_id): e.data for e in mine(records)}
    assert events[accepted["checkin_id"]].accepted is True
    assert events[accepted["checkin_id"]].suspicion_flags == ["mock_location"]
    assert events[refused["checkin_id"]].accepted is False
    assert events[refused["checkin_id"]].refusal_rule == "cn.quiet_hours"
    assert all(e.type == "visit.checked_in" for e in events.values())
    assert b"lat" not in b"".join(r.value for r in records if r.key == visit.account_id.encode()), (
        "no positions"
    )


async def test_a_device_time_after_its_own_send_time_is_a_clear_422(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    r = await visits.check_in(agent_id, visit.visit_id, at=at_local(10) + timedelta(days=40))
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "device_time"
    missing = await visits.client.post(
        f"/v1/me/visits/{visit.visit_id}/check-ins",
        json={
            "checkin_id": str(uuid.uuid4()),
            "device_time": at_local(10).isoformat(),
            "position": {"lat": HOME[0], "lon": HOME[1], "accuracy_m": 5},
            "mock_location": False,
        },
        headers=visits.agent(agent_id),
    )
    assert missing.status_code == 422
    assert missing.json()["detail"] == [{"field": "header.X-Device-Clock", "reason": "Field required"}]
