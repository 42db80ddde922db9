"""Per-agent rate limits (429 with Retry-After) and bounded request bodies (413)."""

import uuid

import pytest

from tests.integration.visits.conftest import promise_body

pytestmark = pytest.mark.integration


async def test_an_agent_over_the_rate_gets_429_others_are_unaffected(visits, agent_id) -> None:
    burst = visits.app.state.settings.rate_limit_burst
    headers = visits.agent(agent_id)
    statuses = [
        (await visits.client.get("/v1/me/visits", headers=headers)).status_code for _ in range(burst + 5)
    ]
    assert statuses[:burst] == [200] * burst
    assert 429 in statuses[burst:]
    limited = await visits.client.get("/v1/me/visits", headers=headers)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json() == {"detail": [{"reason": "too many requests from this agent; retry later"}]}
    other = await visits.client.get("/v1/me/visits", headers=visits.agent(f"{agent_id}-b"))
    assert other.status_code == 200


async def test_a_body_over_the_limit_is_413_by_content_length(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    limit = visits.app.state.settings.max_body_bytes
    body = promise_body(notes="x" * (limit + 10))
    r = await visits.client.post(
        f"/v1/me/visits/{visit.visit_id}/outcomes", json=body, headers=visits.agent(agent_id)
    )
    assert r.status_code == 413
    assert r.json() == {"detail": [{"reason": f"request body larger than {limit} bytes"}]}


async def test_a_streamed_body_over_the_limit_is_413_too(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    limit = visits.app.state.settings.max_body_bytes

    async def chunks():
        yield b'{"outcome_id": "' + str(uuid.uuid4()).encode() + b'", "notes": "'
        for _ in range(limit // 1024 + 2):
            yield b"y" * 1024
        yield b'"}'

    r = await visits.client.post(
        f"/v1/me/visits/{visit.visit_id}/outcomes",
        content=chunks(),
        headers={**visits.agent(agent_id), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert not await visits.fetch("SELECT 1 FROM outcomes WHERE visit_id = $1", visit.visit_id)
