"""Authentication (signed JWTs only) and object-level authorization (OWASP API1): another
agent's visit is 404 on every endpoint, exactly like a visit that does not exist; supervisors
see their own team only. The tables below must cover every /v1 operation of the app."""

import base64
import json
import uuid
from datetime import datetime, timedelta

import pytest

from shared.auth import generate_keypair, issue_token
from tests.integration.visits.conftest import ZONE, at_local, cash_body, promise_body

pytestmark = pytest.mark.integration


def operations(app) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in ops
    }


def check_in_body() -> dict:
    return {
        "checkin_id": str(uuid.uuid4()),
        "device_time": at_local(10).isoformat(),
        "position": {"lat": 22.5431, "lon": 113.9436, "accuracy_m": 5},
        "mock_location": False,
    }


def deposit_body() -> dict:
    return {
        "deposit_id": str(uuid.uuid4()),
        "amount": "10.00",
        "currency": "CNY",
        "deposited_on": "2026-11-28",
        "bank_reference": f"S-{uuid.uuid4().hex[:6]}",
    }


# --- authentication ----------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def bad_tokens(keys, tmp_path_factory) -> dict[str, str]:
    private = keys[0]
    good = issue_token(private, "AG-BAD", "agent", "fieldcollect", "fieldcollect-dev")
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    other_private, _ = generate_keypair(tmp_path_factory.mktemp("other-issuer"))
    return {
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "wrong_audience": issue_token(private, "AG-BAD", "agent", "another-app", "fieldcollect-dev"),
        "wrong_issuer": issue_token(private, "AG-BAD", "agent", "fieldcollect", "someone-else"),
        "expired": issue_token(
            private, "AG-BAD", "agent", "fieldcollect", "fieldcollect-dev", ttl=timedelta(seconds=-30)
        ),
        "tampered": f"{header}.{_b64({**claims, 'sub': 'AG-VICTIM'})}.{signature}",
        "other_key": issue_token(
            other_private.read_text(), "AG-BAD", "agent", "fieldcollect", "fieldcollect-dev"
        ),
        "unknown_role": issue_token(private, "AG-BAD", "janitor", "fieldcollect", "fieldcollect-dev"),
        "garbage": "not-a-jwt",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "alg_none",
        "wrong_audience",
        "wrong_issuer",
        "expired",
        "tampered",
        "other_key",
        "unknown_role",
        "garbage",
    ],
)
async def test_bad_tokens_are_refused(visits, bad_tokens, kind) -> None:
    r = await visits.client.get("/v1/me/visits", headers={"Authorization": f"Bearer {bad_tokens[kind]}"})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"


async def test_every_operation_needs_a_token_of_the_right_role(visits, agent_id) -> None:
    visit_id = uuid.uuid4()
    for method, template in sorted(operations(visits.app)):
        path = template.replace("{visit_id}", str(visit_id)).replace("{day}", "today")
        anonymous = await visits.client.request(method, path, json={})
        assert anonymous.status_code == 401, (method, path)
        role = "agent" if template.startswith("/v1/team/") else "supervisor"
        wrong = await visits.client.request(
            method, path, json={}, headers={"Authorization": f"Bearer {visits.token('X-1', role, 'T')}"}
        )
        assert wrong.status_code == 403, (method, path, role)


# --- BOLA: agents --------------------------------------------------------------------------------


async def test_another_agents_visit_is_404_on_every_endpoint(visits, agent_id) -> None:
    owner, intruder = agent_id, f"{agent_id}-intruder"
    theirs = await visits.assign(owner)
    await visits.assign(intruder)  # the intruder has visits of their own
    missing = uuid.uuid4()
    as_intruder = {**visits.agent(intruder), "X-Device-Clock": datetime.now().astimezone().isoformat()}

    cases = {
        ("GET", "/v1/me/visits/{visit_id}"): lambda v: visits.client.get(
            f"/v1/me/visits/{v}", headers=as_intruder
        ),
        ("POST", "/v1/me/visits/{visit_id}/check-ins"): lambda v: visits.client.post(
            f"/v1/me/visits/{v}/check-ins", json=check_in_body(), headers=as_intruder
        ),
        ("POST", "/v1/me/visits/{visit_id}/outcomes"): lambda v: visits.client.post(
            f"/v1/me/visits/{v}/outcomes", json=cash_body(f"R-{uuid.uuid4().hex[:6]}"), headers=as_intruder
        ),
        ("POST", "/v1/me/visits/{visit_id}/cash-confirmations"): lambda v: visits.client.post(
            f"/v1/me/visits/{v}/cash-confirmations",
            json={"confirmation_id": str(uuid.uuid4()), "amount": "10.00", "receipt_number": "R-1"},
            headers=as_intruder,
        ),
    }
    otp_outcome = cash_body(
        "R-OTP", cash_confirmation={"method": "otp", "reference": str(uuid.uuid4()), "code": "123456"}
    )
    for v in (theirs.visit_id, missing):
        r = await visits.client.post(f"/v1/me/visits/{v}/outcomes", json=otp_outcome, headers=as_intruder)
        assert r.status_code == 404, "an otp cash outcome too"
    with_visit_id = {op for op in operations(visits.app) if "{visit_id}" in op[1]}
    assert set(cases) == with_visit_id, "every endpoint taking a visit id has a BOLA case"
    for op, call in cases.items():
        foreign, absent = await call(theirs.visit_id), await call(missing)
        assert foreign.status_code == absent.status_code == 404, op
        assert (
            foreign.json() == absent.json() == {"detail": [{"reason": "no such visit", "field": "visit_id"}]}
        ), op
    assert not await visits.fetch("SELECT 1 FROM checkins WHERE visit_id = $1", theirs.visit_id)
    assert not await visits.fetch("SELECT 1 FROM outcomes WHERE visit_id = $1", theirs.visit_id)
    assert not await visits.fetch("SELECT 1 FROM cash_confirmations WHERE visit_id = $1", theirs.visit_id)
    [row] = await visits.fetch("SELECT status FROM visits WHERE visit_id = $1", theirs.visit_id)
    assert row["status"] == "assigned"


async def test_idempotency_keys_do_not_open_a_side_door(visits, agent_id) -> None:
    owner, intruder = agent_id, f"{agent_id}-intruder"
    theirs = await visits.assign(owner)
    body, key = promise_body(), "shared-looking-key"
    mine = await visits.client.post(
        f"/v1/me/visits/{theirs.visit_id}/outcomes",
        json=body,
        headers={**visits.agent(owner), "Idempotency-Key": key},
    )
    assert mine.status_code == 201
    replay = await visits.client.post(
        f"/v1/me/visits/{theirs.visit_id}/outcomes",
        json=body,
        headers={**visits.agent(intruder), "Idempotency-Key": key},
    )
    assert replay.status_code == 404, "the owner's stored response is never replayed to another agent"
    detail = await visits.client.get(f"/v1/me/visits/{theirs.visit_id}", headers=visits.agent(intruder))
    assert detail.status_code == 404


async def test_agent_lists_show_only_their_own_visits(visits, agent_id) -> None:
    owner, intruder = agent_id, f"{agent_id}-intruder"
    theirs = await visits.assign(owner)
    own = await visits.assign(intruder)
    listed = (await visits.client.get("/v1/me/visits", headers=visits.agent(intruder))).json()
    route = (
        await visits.client.get("/v1/me/route/today", headers=visits.agent(intruder), params={"tz": ZONE})
    ).json()
    assert [v["visit_id"] for v in listed] == [str(own.visit_id)]
    assert [v["visit_id"] for v in route["visits"]] == [str(own.visit_id)]
    assert str(theirs.visit_id) not in json.dumps([listed, route])


async def test_another_agents_deposit_id_is_neither_read_nor_changed(visits, agent_id) -> None:
    owner, intruder = agent_id, f"{agent_id}-intruder"
    body = deposit_body()
    assert (
        await visits.client.post("/v1/me/cash-deposits", json=body, headers=visits.agent(owner))
    ).status_code == 201
    r = await visits.client.post("/v1/me/cash-deposits", json=body, headers=visits.agent(intruder))
    assert r.status_code == 409 and body["bank_reference"] not in r.text and "10.00" not in r.text
    [row] = await visits.fetch(
        "SELECT agent_id FROM cash_deposits WHERE deposit_id = $1", uuid.UUID(body["deposit_id"])
    )
    assert row["agent_id"] == owner


# --- supervisors see their team ------------------------------------------------------------------


async def test_supervisors_see_only_their_teams_visits_flags_and_cash(visits, agent_id) -> None:
    mine_team, other_team = f"T-{agent_id}", f"T-{agent_id}-other"
    ours = await visits.assign(agent_id, team=mine_team)
    theirs = await visits.assign(f"{agent_id}-o", team=other_team)
    for agent, visit, receipt in ((agent_id, ours, "R-A"), (f"{agent_id}-o", theirs, "R-B")):
        await visits.check_in(agent, visit.visit_id, mock_location=True)
        await visits.client.post(
            f"/v1/me/visits/{visit.visit_id}/outcomes", json=cash_body(receipt), headers=visits.agent(agent)
        )
    day = ours.plan_date.isoformat()
    sup = visits.supervisor(mine_team)
    cases = {
        ("GET", "/v1/team/visits"): visits.client.get(
            "/v1/team/visits", headers=sup, params={"plan_date": day}
        ),
        ("GET", "/v1/team/check-in-flags"): visits.client.get("/v1/team/check-in-flags", headers=sup),
        ("GET", "/v1/team/cash"): visits.client.get(
            "/v1/team/cash", headers=sup, params={"from_day": day, "to_day": day}
        ),
    }
    assert set(cases) == {op for op in operations(visits.app) if op[1].startswith("/v1/team/")}
    for op, call in cases.items():
        r = await call
        assert r.status_code == 200, (op, r.text)
        assert {x["agent_id"] for x in r.json()} == {agent_id}, op
    assert (
        str(theirs.visit_id)
        not in (await visits.client.get("/v1/team/visits", headers=sup, params={"plan_date": day})).text
    )


async def test_every_agent_operation_is_covered_by_a_bola_case(visits) -> None:
    covered = {
        ("GET", "/v1/me/visits/{visit_id}"),
        ("POST", "/v1/me/visits/{visit_id}/check-ins"),
        ("POST", "/v1/me/visits/{visit_id}/outcomes"),  # test_another_agents_visit_is_404_on_every_endpoint
        ("POST", "/v1/me/visits/{visit_id}/cash-confirmations"),  # idem
        ("GET", "/v1/me/visits"),
        ("GET", "/v1/me/route/{day}"),  # test_agent_lists_show_only_their_own_visits
        ("POST", "/v1/me/cash-deposits"),  # test_another_agents_deposit_id_is_neither_read_nor_changed
        ("GET", "/v1/team/visits"),
        ("GET", "/v1/team/check-in-flags"),
        ("GET", "/v1/team/cash"),
    }
    assert operations(visits.app) == covered
