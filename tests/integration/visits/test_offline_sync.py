"""Offline sync: the app sends its queue late, out of order and twice. Client ids and
Idempotency-Key make every write exactly-once; nothing sent is ever dropped."""

import asyncio
import random
import uuid

import pytest

from shared.events import decode, topics
from shared.events import payloads as p
from tests.conftest import read_topic
from tests.integration.visits.conftest import HOME, at_local, cash_body, north_of, promise_body

pytestmark = pytest.mark.integration


def url(visit):
    return f"/v1/me/visits/{visit.visit_id}/outcomes"


async def test_the_same_outcome_sent_twice_is_recorded_once(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    body = promise_body()
    first = await visits.client.post(url(visit), json=body, headers=visits.agent(agent_id))
    again = await visits.client.post(url(visit), json=body, headers=visits.agent(agent_id))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    changed = await visits.client.post(
        url(visit), json={**body, "notes": "edited"}, headers=visits.agent(agent_id)
    )
    assert changed.status_code == 409
    assert changed.json()["detail"] == [
        {"reason": "outcome_id already used for a different request", "field": "outcome_id"}
    ]
    assert len(await visits.fetch("SELECT 1 FROM outcomes WHERE visit_id = $1", visit.visit_id)) == 1


async def test_idempotency_key_replays_the_first_response(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    body = cash_body(f"R-{uuid.uuid4().hex[:6]}")
    headers = {**visits.agent(agent_id), "Idempotency-Key": "queue-item-1"}
    first = await visits.client.post(url(visit), json=body, headers=headers)
    # The same request re-serialised by the app (other key order): still the same request.
    again = await visits.client.post(url(visit), json=dict(reversed(list(body.items()))), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers

    other = await visits.client.post(url(visit), json=promise_body(), headers=headers)
    assert other.status_code == 409
    assert other.json()["detail"] == [
        {"reason": "Idempotency-Key already used for a different request", "field": "Idempotency-Key"}
    ]
    elsewhere = await visits.client.post(
        "/v1/me/cash-deposits",
        json={
            "deposit_id": str(uuid.uuid4()),
            "amount": "1.00",
            "currency": "CNY",
            "deposited_on": "2026-11-29",
            "bank_reference": "S-1",
        },
        headers=headers,
    )
    assert elsewhere.status_code == 409, "a key belongs to one request, whatever the endpoint"

    someone_else = f"{agent_id}-b"
    theirs = await visits.assign(someone_else)
    r = await visits.client.post(
        url(theirs),
        json=cash_body("R-1"),
        headers={**visits.agent(someone_else), "Idempotency-Key": "queue-item-1"},
    )
    assert r.status_code == 201, "keys are per agent"


async def test_concurrent_sends_of_one_key_write_and_publish_once(visits, kafka_bootstrap, agent_id) -> None:
    visit = await visits.assign(agent_id)
    body = promise_body()
    headers = {**visits.agent(agent_id), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    responses = await asyncio.gather(
        *[visits.client.post(url(visit), json=body, headers=headers) for _ in range(5)]
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    assert len(await visits.fetch("SELECT 1 FROM outcomes WHERE visit_id = $1", visit.visit_id)) == 1

    def mine(records):
        return [decode(x.value, x.headers) for x in records if x.key == visit.account_id.encode()]

    await read_topic(kafka_bootstrap, topics.VISIT_OUTCOMES, lambda rs: mine(rs))
    await asyncio.sleep(0.5)
    records = await read_topic(kafka_bootstrap, topics.VISIT_OUTCOMES, lambda rs: mine(rs))
    assert len(mine(records)) == 1


async def test_check_ins_sent_out_of_order_and_twice(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    ids = [uuid.uuid4() for _ in range(3)]
    times = [at_local(10), at_local(10, 20), at_local(10, 40)]
    fixes = [north_of(HOME, 10 + i + random.random()) for i in range(3)]  # a resend is the same body
    for i in (2, 0, 1, 0, 2):  # late, early, middle, then two resends
        r = await visits.check_in(
            agent_id, visit.visit_id, at=times[i], checkin_id=ids[i], position=fixes[i], exact=True
        )
        assert r.status_code in (200, 201), r.text
    rows = await visits.fetch(
        "SELECT checkin_id FROM checkins WHERE visit_id = $1 ORDER BY checked_in_at", visit.visit_id
    )
    assert [r["checkin_id"] for r in rows] == ids
    detail = await visits.client.get(f"/v1/me/visits/{visit.visit_id}", headers=visits.agent(agent_id))
    assert [c["checkin_id"] for c in detail.json()["check_ins"]] == [str(i) for i in ids]


async def test_an_outcome_before_its_check_in_is_fine(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    outcome = await visits.client.post(url(visit), json=promise_body(), headers=visits.agent(agent_id))
    check_in = await visits.check_in(agent_id, visit.visit_id)
    assert (outcome.status_code, check_in.status_code) == (201, 201)
    assert check_in.json()["accepted"] is True


async def test_an_outcome_for_a_visit_cancelled_meanwhile_is_kept_and_flagged(
    visits, kafka_bootstrap, agent_id
) -> None:
    visit = await visits.assign(agent_id)
    await visits.apply(
        p.VisitCancelled(
            account_id=visit.account_id,
            visit_id=visit.visit_id,
            agent_id=agent_id,
            reason="suppressed: dispute",
        )
    )
    check_in = await visits.check_in(agent_id, visit.visit_id)
    r = await visits.client.post(url(visit), json=promise_body(), headers=visits.agent(agent_id))
    assert r.status_code == 201, r.text
    assert r.json()["visit_cancelled_before"] is True
    [row] = await visits.fetch(
        "SELECT flags FROM checkins WHERE checkin_id = $1", uuid.UUID(check_in.json()["checkin_id"])
    )
    assert [f["code"] for f in row["flags"]] == ["visit_cancelled"]
    [status] = await visits.fetch("SELECT status FROM visits WHERE visit_id = $1", visit.visit_id)
    assert status["status"] == "cancelled", "the cancellation stands"

    def mine(records):
        return [decode(x.value, x.headers) for x in records if x.key == visit.account_id.encode()]

    records = await read_topic(
        kafka_bootstrap,
        topics.VISIT_OUTCOMES,
        lambda rs: any(e.type == "visit.outcome_recorded" for e in mine(rs)),
    )
    [event] = [e for e in mine(records) if e.type == "visit.outcome_recorded"]
    assert event.data.visit_cancelled_before is True


async def test_deposits_are_exactly_once_by_their_id(visits, agent_id) -> None:
    body = {
        "deposit_id": str(uuid.uuid4()),
        "amount": "120.50",
        "currency": "CNY",
        "deposited_on": "2026-11-28",
        "bank_reference": f"SLIP-{agent_id}",
    }
    first = await visits.client.post("/v1/me/cash-deposits", json=body, headers=visits.agent(agent_id))
    again = await visits.client.post("/v1/me/cash-deposits", json=body, headers=visits.agent(agent_id))
    assert (first.status_code, again.status_code) == (201, 200) and first.json() == again.json()
    other = await visits.client.post(
        "/v1/me/cash-deposits", json={**body, "amount": "99.00"}, headers=visits.agent(agent_id)
    )
    assert other.status_code == 409 and other.json()["detail"][0]["field"] == "deposit_id"
