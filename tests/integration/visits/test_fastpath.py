"""The short way (services/visits/fastpath.py) answers exactly as the FastAPI routes do, and
hands every other case to them without charging the agent's rate twice."""

import uuid

import pytest

from services.visits import fastpath
from services.visits.guards import RateLimiter
from tests.integration.visits.conftest import promise_body

pytestmark = pytest.mark.integration


@pytest.fixture
def taken(monkeypatch) -> list[str]:
    """The requests the short way answered itself."""
    answered: list[str] = []
    route, outcome = fastpath.FastPaths._route, fastpath.FastPaths._outcome

    async def spy_route(self, scope, receive, send):
        done = await route(self, scope, receive, send)
        if done:
            answered.append("route")
        return done

    async def spy_outcome(self, scope, receive, send):
        done, receive = await outcome(self, scope, receive, send)
        if done:
            answered.append("outcome")
        return done, receive

    monkeypatch.setattr(fastpath.FastPaths, "_route", spy_route)
    monkeypatch.setattr(fastpath.FastPaths, "_outcome", spy_outcome)
    return answered


async def test_the_route_is_the_same_either_way(visits, agent_id, taken) -> None:
    await visits.assign(agent_id)
    url, headers = "/v1/me/route/today?tz=Asia/Shanghai", visits.agent(agent_id)
    first = await visits.client.get(url, headers=headers)  # token not cached yet: FastAPI's route
    second = await visits.client.get(url, headers=headers)
    assert taken == ["route"]
    assert (first.status_code, first.content) == (second.status_code, second.content) == (200, first.content)
    for name in ("etag", "cache-control", "content-type", "content-length"):
        assert first.headers[name] == second.headers[name], name
    unchanged = await visits.client.get(url, headers={**headers, "If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and taken == ["route", "route"]
    bad_zone = await visits.client.get("/v1/me/route/today?tz=Mars/Olympus", headers=headers)
    assert bad_zone.status_code == 422 and bad_zone.json()["detail"][0]["field"] == "tz"


async def test_a_new_outcome_is_answered_short_and_replayed_by_the_route(visits, agent_id, taken) -> None:
    visit = await visits.assign(agent_id)
    headers = visits.agent(agent_id)
    await visits.client.get("/v1/me/route/today", headers=headers)  # caches the token
    body = promise_body()
    url = f"/v1/me/visits/{visit.visit_id}/outcomes"
    created = await visits.client.post(url, json=body, headers={**headers, "Idempotency-Key": "k-fast"})
    assert created.status_code == 201 and taken == ["outcome"]
    again = await visits.client.post(url, json=body, headers={**headers, "Idempotency-Key": "k-fast"})
    assert again.status_code == 201 and again.content == created.content
    assert again.headers["idempotent-replayed"] == "true" and taken == ["outcome"], "the route replays it"
    invalid = await visits.client.post(url, json={**body, "outcome_id": "nope"}, headers=headers)
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["field"] == "outcome_id"


async def test_a_request_handed_back_costs_one_rate_token(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    headers = visits.agent(agent_id)
    await visits.client.get("/v1/me/route/today", headers=headers)  # caches the token
    limiter, visits.app.state.rate_limiter = visits.app.state.rate_limiter, RateLimiter(rate=0.001, burst=2)
    try:
        unknown = await visits.client.post(
            f"/v1/me/visits/{uuid.uuid4()}/outcomes", json=promise_body(), headers=headers
        )
        assert unknown.status_code == 404  # taken short, written nothing, answered by the route
        url = f"/v1/me/visits/{visit.visit_id}/outcomes"
        assert (await visits.client.post(url, json=promise_body(), headers=headers)).status_code == 201
        limited = await visits.client.post(url, json=promise_body(), headers=headers)
        assert limited.status_code == 429 and "retry-after" in limited.headers
    finally:
        visits.app.state.rate_limiter = limiter


async def test_the_short_way_keeps_the_route_label_of_metrics_and_spans(visits, agent_id, taken) -> None:
    visit = await visits.assign(agent_id)
    headers = visits.agent(agent_id)
    await visits.client.get("/v1/me/route/today", headers=headers)  # caches the token
    await visits.client.get("/v1/me/route/today", headers=headers)
    url = f"/v1/me/visits/{visit.visit_id}/outcomes"
    created = await visits.client.post(url, json=promise_body(), headers=headers)
    assert created.status_code == 201 and taken == ["route", "outcome"]
    metrics = (await visits.client.get("/metrics")).text
    assert 'route="/v1/me/visits/{visit_id}/outcomes",status="201"' in metrics
    assert 'method="GET",route="/v1/me/route/{day}",status="200"' in metrics
    assert 'route="<unmatched>"' not in metrics
