"""The common outcome written by one database call (migration 0003's record_outcome), and
every other case left to the general path with nothing written: the call is all or nothing."""

import uuid

import pytest

from services.visits import handlers
from services.visits.idempotency import fingerprint
from services.visits.models import OutcomeIn
from shared.events import payloads as p
from tests.integration.visits.conftest import cash_body, promise_body

pytestmark = pytest.mark.integration


async def one_call(visits, agent_id: str, visit_id: uuid.UUID, body: dict, key: str | None):
    outcome = OutcomeIn.model_validate(body)
    fp = fingerprint("POST", f"/v1/me/visits/{visit_id}/outcomes", outcome)
    async with visits.pool.acquire() as conn:
        return await handlers.record_outcome_at_once(
            conn, visits.app.state.visits, agent_id, visit_id, outcome, fp, key
        )


async def keys_of(visits, agent_id: str) -> list[str]:
    return [
        r["key"] for r in await visits.fetch("SELECT key FROM idempotency_keys WHERE agent_id = $1", agent_id)
    ]


async def test_a_new_outcome_is_written_whole_by_one_call(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    body = promise_body()
    written = await one_call(visits, agent_id, visit.visit_id, body, "k-1")
    assert written is not None and written.status_code == 201
    [stored] = await visits.fetch(
        "SELECT status_code, response FROM idempotency_keys WHERE agent_id = $1 AND key = 'k-1'", agent_id
    )
    assert (stored["status_code"], bytes(stored["response"])) == (201, written.body)
    [row] = await visits.fetch(
        "SELECT o.kind, o.visit_cancelled_before, v.status FROM outcomes o JOIN visits v USING (visit_id)"
        " WHERE o.outcome_id = $1",
        uuid.UUID(body["outcome_id"]),
    )
    assert dict(row) == {"kind": "promise_to_pay", "visit_cancelled_before": False, "status": "completed"}
    r = await visits.client.post(
        f"/v1/me/visits/{visit.visit_id}/outcomes",
        json=body,
        headers={**visits.agent(agent_id), "Idempotency-Key": "k-1"},
    )
    assert r.status_code == 201 and r.content == written.body and r.headers["idempotent-replayed"] == "true"


async def test_a_used_outcome_id_rolls_the_new_key_back(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    body = promise_body()
    assert await one_call(visits, agent_id, visit.visit_id, body, "first") is not None
    assert await one_call(visits, agent_id, visit.visit_id, body, "second") is None
    assert await keys_of(visits, agent_id) == ["first"], "the second key was claimed, then rolled back"


async def test_a_used_receipt_writes_nothing(visits, agent_id) -> None:
    first, second = await visits.assign(agent_id), await visits.assign(agent_id, sequence=2)
    assert await one_call(visits, agent_id, first.visit_id, cash_body("R-1"), "a") is not None
    again = cash_body("R-1")
    assert await one_call(visits, agent_id, second.visit_id, again, "b") is None
    assert not await visits.fetch(
        "SELECT 1 FROM outcomes WHERE outcome_id = $1", uuid.UUID(again["outcome_id"])
    )
    assert await keys_of(visits, agent_id) == ["a"]
    [status] = await visits.fetch("SELECT status FROM visits WHERE visit_id = $1", second.visit_id)
    assert status["status"] == "assigned"


async def test_cancelled_and_foreign_visits_are_left_to_the_general_path(visits, agent_id) -> None:
    cancelled = await visits.assign(agent_id)
    await visits.apply(
        p.VisitCancelled(
            account_id=cancelled.account_id, visit_id=cancelled.visit_id, agent_id=agent_id, reason="paid"
        )
    )
    theirs = await visits.assign(f"{agent_id}-other")
    assert await one_call(visits, agent_id, cancelled.visit_id, promise_body(), "c") is None
    assert await one_call(visits, agent_id, theirs.visit_id, promise_body(), "d") is None
    assert await keys_of(visits, agent_id) == []
    for visit in (cancelled, theirs):
        assert not await visits.fetch("SELECT 1 FROM outcomes WHERE visit_id = $1", visit.visit_id)
