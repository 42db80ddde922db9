"""Schemathesis against the in-process app with valid tokens: no 5xx, no response outside
the documented status codes, content types, headers and schemas, and invalid requests refused.

Cases are drawn from the OpenAPI document per operation (valid ones, valid ones aimed at a
real visit of the agent, invalid ones) and sent through the same ASGI transport as the other
tests. The rate limit is raised for this app only: the fuzzer is one agent sending hundreds of
requests, and 429 is tested on its own (test_limits.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.visits.main import create_app
from services.visits.settings import VisitsSettings
from tests.integration.visits.conftest import Visits

pytestmark = pytest.mark.integration

EXAMPLES_PER_KIND = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def draw(strategy: Any, count: int) -> list[Any]:
    cases: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(case=strategy)
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases


def cases_for(operation: Any, auth: str, visit_id: str) -> list[Any]:
    headers = {"Authorization": auth}
    # The documented examples first, aimed at a visit of the agent's own and with fresh ids (a
    # documented id may already be taken by another test): every operation is reached at least
    # by what its documentation shows, whatever the random draws hit.
    cases = [
        fresh_ids(case)
        for example in operation.get_strategies_from_examples(
            headers=headers, path_parameters={"visit_id": visit_id}
        )
        for case in draw(example, 1)
    ]
    kinds = [operation.as_strategy(GenerationMode.POSITIVE, headers=headers)]
    if "{visit_id}" in operation.path:
        kinds.append(
            operation.as_strategy(
                GenerationMode.POSITIVE, headers=headers, path_parameters={"visit_id": visit_id}
            )
        )
    kinds.append(operation.as_strategy(GenerationMode.NEGATIVE, headers=headers))
    return cases + [case for kind in kinds for case in draw(kind, EXAMPLES_PER_KIND)]


UNIQUE_FIELDS = ("bank_reference", "receipt_number")


def fresh_ids(case: Any) -> Any:
    """The same documented request, with its client-generated ids and references made new."""
    if isinstance(case.body, dict):
        for key, value in list(case.body.items()):
            if key.endswith("_id") and _is_uuid(value):
                case.body[key] = str(uuid.uuid4())
            elif key in UNIQUE_FIELDS and isinstance(value, str):
                case.body[key] = f"{value[:20]}-{uuid.uuid4().hex[:8]}"
        outcome = case.body.get("outcome")
        if isinstance(outcome, dict) and isinstance(outcome.get("receipt_number"), str):
            outcome["receipt_number"] = f"R-{uuid.uuid4().hex[:10]}"
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    return case


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


async def send(client: httpx.AsyncClient, case: Any) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url="http://t")
    kwargs["headers"].setdefault("X-Device-Clock", datetime.now(UTC).isoformat())
    return await client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs["headers"],
        json=kwargs.get("json"),
        content=kwargs.get("data") if "json" not in kwargs else None,
    )


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    service_env, token, agent_id
) -> None:
    app = create_app(VisitsSettings(run_consumers=False, rate_limit_per_s=1e6, rate_limit_burst=1_000_000))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        harness = Visits(app, client, token)
        team = f"T-{agent_id}"
        auth = {
            "/v1/me/": f"Bearer {token(agent_id, 'agent', team)}",
            "/v1/team/": f"Bearer {token('SUP-fuzz', 'supervisor', team)}",
        }
        statuses: dict[str, set[int]] = {}
        for result in schemathesis.openapi.from_dict(app.openapi()).get_all_operations():
            operation = result.ok()
            prefix = next((p for p in auth if operation.path.startswith(p)), None)
            if prefix is None:
                continue  # health and metrics
            visit = await harness.assign(agent_id, team=team)  # one per operation: no order effects
            await harness.check_in(agent_id, visit.visit_id, mock_location=True)
            for case in cases_for(operation, auth[prefix], str(visit.visit_id)):
                response = await send(client, case)
                case.validate_response(response, checks=CHECKS)
                statuses.setdefault(f"{operation.method.upper()} {operation.path}", set()).add(
                    response.status_code
                )
    assert len(statuses) == 10
    refused = {op: codes for op, codes in statuses.items() if not codes & {200, 201}}
    assert not refused, f"every operation was reached, not only refused: {refused}"
