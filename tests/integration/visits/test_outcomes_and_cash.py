"""Typed outcomes validated per type, the recording the cn pack requires, and cash on site:
receipts unique per agent, the customer's confirmation, collected vs deposited per day."""

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.visits.models import OUTCOME_EXAMPLES
from shared.events import decode, topics
from tests.conftest import read_topic
from tests.integration.visits.conftest import ZONE, cash_body, promise_body, texted_code

pytestmark = pytest.mark.integration


def url(visit):
    return f"/v1/me/visits/{visit.visit_id}/outcomes"


def today():
    return datetime.now(ZoneInfo(ZONE)).date()


async def test_a_promise_is_recorded_with_notes_and_observation_and_published(
    visits, kafka_bootstrap, agent_id
) -> None:
    visit = await visits.assign(agent_id)
    body = promise_body()
    r = await visits.client.post(url(visit), json=body, headers=visits.agent(agent_id))
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "promise_to_pay" and r.json()["visit_cancelled_before"] is False
    [row] = await visits.fetch(
        "SELECT notes, observation, recording_ref FROM outcomes WHERE outcome_id = $1",
        uuid.UUID(body["outcome_id"]),
    )
    assert row["notes"] == body["notes"] and row["observation"]["ability_to_pay"] == "partly_able"
    [status] = await visits.fetch("SELECT status FROM visits WHERE visit_id = $1", visit.visit_id)
    assert status["status"] == "completed"

    def mine(records):
        return [decode(x.value, x.headers) for x in records if x.key == visit.account_id.encode()]

    [event] = mine(await read_topic(kafka_bootstrap, topics.VISIT_OUTCOMES, lambda rs: mine(rs)))
    assert event.type == "visit.outcome_recorded"
    assert event.data.outcome.kind == "promise_to_pay" and event.data.recording_ref == "rec-0001"
    assert event.data.currency == "CNY"


@pytest.mark.parametrize(
    ("outcome", "field", "reason"),
    [
        (
            {"kind": "promise_to_pay", "amount": "0.00", "promised_date": "{soon}"},
            "outcome.amount",
            "promise_to_pay needs an amount above zero",
        ),
        (
            {"kind": "promise_to_pay", "amount": "10.00", "promised_date": "{past}"},
            "outcome.promised_date",
            "a promise cannot be dated before the visit",
        ),
        (
            {"kind": "promise_to_pay", "amount": "10.00", "promised_date": "{far}"},
            "outcome.promised_date",
            "a promise may be dated at most 90 days ahead",
        ),
        (
            {"kind": "paid_on_site", "amount": "0", "receipt_number": "R-1"},
            "outcome.amount",
            "paid_on_site needs an amount above zero",
        ),
        (
            {"kind": "promise_to_pay", "amount": "-5", "promised_date": "{soon}"},
            "outcome.promise_to_pay.amount",
            "Input should be greater than or equal to 0",
        ),
        (
            {"kind": "hardship_reported", "category": "job_loss"},
            "outcome.hardship_reported.referral_consent",
            "Field required",
        ),
        (
            {"kind": "hardship_reported", "category": "bad_luck", "referral_consent": True},
            "outcome.hardship_reported.category",
            None,
        ),
        (
            {"kind": "moved_or_wrong_address", "new_address": {"line1": "x", "city": "y", "country": "CHN"}},
            "outcome.moved_or_wrong_address.new_address.country",
            "String should have at most 2 characters",
        ),
        ({"kind": "abducted_by_aliens"}, "outcome", None),
        (
            {"kind": "paid_on_site", "amount": "10.00"},
            "outcome.paid_on_site.receipt_number",
            "Field required",
        ),
    ],
)
async def test_each_outcome_type_is_validated_with_the_field_named(
    visits, agent_id, outcome, field, reason
) -> None:
    visit = await visits.assign(agent_id)
    dates = {
        "{soon}": today() + timedelta(days=3),
        "{past}": today() - timedelta(days=2),
        "{far}": today() + timedelta(days=120),
    }
    outcome = {
        k: (dates[v].isoformat() if isinstance(v, str) and v in dates else v) for k, v in outcome.items()
    }
    extra = (
        {"cash_confirmation": {"method": "signature", "reference": "sig-1"}}
        if outcome["kind"] == "paid_on_site"
        else {}
    )
    r = await visits.client.post(
        url(visit), json=promise_body(outcome=outcome, **extra), headers=visits.agent(agent_id)
    )
    assert r.status_code == 422, r.text
    problems = r.json()["detail"]
    assert field in [p["field"] for p in problems], problems
    if reason:
        assert {"field": field, "reason": reason} in problems
    assert not await visits.fetch("SELECT 1 FROM outcomes WHERE visit_id = $1", visit.visit_id)


async def test_validation_errors_never_echo_the_input(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    secret_address = {"line1": "Flat 9, 77 Secret Lane", "city": "Shenzhen", "country": "CHINA"}
    r = await visits.client.post(
        url(visit),
        json=promise_body(outcome={"kind": "moved_or_wrong_address", "new_address": secret_address}),
        headers=visits.agent(agent_id),
    )
    assert r.status_code == 422 and "Secret Lane" not in r.text and "CHINA" not in r.text


async def test_the_cn_pack_requires_the_visit_recording(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    r = await visits.client.post(
        url(visit), json=promise_body(recording_ref=None), headers=visits.agent(agent_id)
    )
    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["field"] == "recording_ref" and "cn.visit_recording" in problem["reason"]
    blank = await visits.client.post(
        url(visit), json=promise_body(recording_ref="  "), headers=visits.agent(agent_id)
    )
    assert blank.status_code == 422


async def test_packs_without_the_requirement_accept_no_recording(visits, agent_id) -> None:
    visit = await visits.assign(agent_id, country="PH")
    r = await visits.client.post(
        url(visit), json=promise_body(recording_ref=None), headers=visits.agent(agent_id)
    )
    assert r.status_code == 201, r.text


async def test_cash_needs_the_customers_confirmation(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    body = cash_body("R-100")
    del body["cash_confirmation"]
    r = await visits.client.post(url(visit), json=body, headers=visits.agent(agent_id))
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "cash_confirmation"
    bad_method = cash_body("R-100", cash_confirmation={"method": "handshake", "reference": "x"})
    r = await visits.client.post(url(visit), json=bad_method, headers=visits.agent(agent_id))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "cash_confirmation.method"
    not_cash = promise_body(cash_confirmation={"method": "otp", "reference": "otp-1"})
    r = await visits.client.post(url(visit), json=not_cash, headers=visits.agent(agent_id))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "cash_confirmation"


async def test_cash_confirmed_by_the_code_follow_up_texts_to_the_customer(
    visits, kafka_bootstrap, agent_id
) -> None:
    visit = await visits.assign(agent_id)
    confirmation = await texted_code(visits, kafka_bootstrap, agent_id, visit, "R-OTP-1", "800.00")
    [stored] = await visits.fetch(
        "SELECT code_hash, currency FROM cash_confirmations WHERE confirmation_id = $1",
        uuid.UUID(confirmation["reference"]),
    )
    assert confirmation["code"] not in stored["code_hash"] and stored["currency"] == "CNY", "only a hash"
    headers = visits.agent(agent_id)
    other_amount = cash_body("R-OTP-1", "900.00", cash_confirmation=confirmation)
    r = await visits.client.post(url(visit), json=other_amount, headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {
            "field": "cash_confirmation.reference",
            "reason": "the code confirms another amount or receipt number",
        }
    ]
    body = cash_body("R-OTP-1", "800.00", cash_confirmation=confirmation)
    r = await visits.client.post(url(visit), json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert (await visits.client.post(url(visit), json=body, headers=headers)).status_code == 200, "resend"
    [cash] = await visits.fetch(
        "SELECT confirmation_method, confirmation_ref FROM cash_collections WHERE outcome_id = $1",
        uuid.UUID(body["outcome_id"]),
    )
    assert dict(cash) == {"confirmation_method": "otp", "confirmation_ref": confirmation["reference"]}
    second = await visits.assign(agent_id, sequence=2)
    reused = cash_body("R-OTP-2", "800.00", cash_confirmation=confirmation)
    r = await visits.client.post(url(second), json=reused, headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "cash_confirmation.reference"


async def test_a_resent_code_request_sends_no_new_code(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    path = f"/v1/me/visits/{visit.visit_id}/cash-confirmations"
    body = {"confirmation_id": str(uuid.uuid4()), "amount": "80.00", "receipt_number": "R-77"}
    first = await visits.client.post(path, json=body, headers=visits.agent(agent_id))
    assert first.status_code == 201, first.text
    assert first.json()["currency"] == "CNY" and first.json()["channel"] == "sms"
    sql = "SELECT code_hash FROM cash_confirmations WHERE confirmation_id = $1"
    [before] = await visits.fetch(sql, uuid.UUID(body["confirmation_id"]))
    again = await visits.client.post(path, json=body, headers=visits.agent(agent_id))
    assert again.status_code == 200 and again.json() == first.json()
    [after] = await visits.fetch(sql, uuid.UUID(body["confirmation_id"]))
    assert after["code_hash"] == before["code_hash"], "the customer's code stays the one texted"
    other = await visits.client.post(path, json={**body, "amount": "90.00"}, headers=visits.agent(agent_id))
    assert other.status_code == 409 and other.json()["detail"][0]["field"] == "confirmation_id"
    no_currency = await visits.assign(agent_id, sequence=2, currency=None)
    r = await visits.client.post(
        f"/v1/me/visits/{no_currency.visit_id}/cash-confirmations",
        json={**body, "confirmation_id": str(uuid.uuid4())},
        headers=visits.agent(agent_id),
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "amount"


async def test_wrong_codes_are_counted_and_refused(visits, kafka_bootstrap, agent_id) -> None:
    visit = await visits.assign(agent_id)
    confirmation = await texted_code(visits, kafka_bootstrap, agent_id, visit, "R-OTP-9", "50.00")
    wrong = f"{(int(confirmation['code']) + 1) % 10**6:06d}"
    headers = visits.agent(agent_id)
    reasons = []
    for _ in range(6):
        bad = cash_body("R-OTP-9", "50.00", cash_confirmation={**confirmation, "code": wrong})
        r = await visits.client.post(url(visit), json=bad, headers=headers)
        assert r.status_code == 422
        reasons.append(r.json()["detail"][0]["reason"])
    assert reasons == ["the code does not match"] * 5 + ["too many wrong codes: request a new confirmation"]
    right = cash_body("R-OTP-9", "50.00", cash_confirmation=confirmation)
    r = await visits.client.post(url(visit), json=right, headers=headers)
    assert r.status_code == 422, "guessing stops for good, even with the right code"
    assert not await visits.fetch("SELECT 1 FROM outcomes WHERE visit_id = $1", visit.visit_id)


async def test_an_otp_confirmation_needs_its_code_and_id(visits, agent_id) -> None:
    visit = await visits.assign(agent_id)
    body = cash_body("R-1", cash_confirmation={"method": "otp", "reference": "otp-1"})
    r = await visits.client.post(url(visit), json=body, headers=visits.agent(agent_id))
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["detail"]] == [
        "cash_confirmation.code",
        "cash_confirmation.reference",
    ]
    unknown = {"method": "otp", "reference": str(uuid.uuid4()), "code": "123456"}
    r = await visits.client.post(
        url(visit), json=cash_body("R-1", cash_confirmation=unknown), headers=visits.agent(agent_id)
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "cash_confirmation.reference"
    signed = {"method": "signature", "reference": "sig-1", "code": "123456"}
    r = await visits.client.post(
        url(visit), json=cash_body("R-1", cash_confirmation=signed), headers=visits.agent(agent_id)
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "cash_confirmation.code"


async def test_a_receipt_number_is_unique_per_agent(visits, agent_id) -> None:
    first, second = await visits.assign(agent_id), await visits.assign(agent_id, sequence=2)
    ok = await visits.client.post(url(first), json=cash_body("R-7"), headers=visits.agent(agent_id))
    assert ok.status_code == 201, ok.text
    again = await visits.client.post(
        url(second), json=cash_body("R-7", kind="partial_payment"), headers=visits.agent(agent_id)
    )
    assert again.status_code == 409
    assert again.json()["detail"] == [
        {"reason": "this receipt number is already used by this agent", "field": "outcome.receipt_number"}
    ]
    assert not await visits.fetch("SELECT 1 FROM outcomes WHERE visit_id = $1", second.visit_id), (
        "nothing half-done"
    )
    other_agent = f"{agent_id}-b"
    theirs = await visits.assign(other_agent)
    r = await visits.client.post(url(theirs), json=cash_body("R-7"), headers=visits.agent(other_agent))
    assert r.status_code == 201, "another agent's receipt book"
    [constraint] = await visits.fetch(
        "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conname = 'cash_receipt_unique_per_agent'"
    )
    assert constraint["d"] == "UNIQUE (agent_id, receipt_number)"


async def test_supervisors_see_cash_collected_vs_deposited_per_agent_and_day(visits, agent_id) -> None:
    team = f"T-{agent_id}"
    a, b = agent_id, f"{agent_id}-b"
    outsider = f"{agent_id}-x"
    day = today()
    yesterday = datetime.now(ZoneInfo(ZONE)) - timedelta(days=1)
    v1, v2 = await visits.assign(a, team=team), await visits.assign(a, team=team, sequence=2)
    v3, v4 = await visits.assign(b, team=team), await visits.assign(outsider, team="elsewhere")
    await visits.client.post(
        url(v1), json=cash_body("A-1", "300.00", recorded_at=yesterday.isoformat()), headers=visits.agent(a)
    )
    await visits.client.post(
        url(v2), json=cash_body("A-2", "800.00", kind="partial_payment"), headers=visits.agent(a)
    )
    await visits.client.post(url(v3), json=cash_body("B-1", "50.00"), headers=visits.agent(b))
    await visits.client.post(url(v4), json=cash_body("X-1", "999.00"), headers=visits.agent(outsider))
    deposit = {
        "deposit_id": str(uuid.uuid4()),
        "amount": "1000.00",
        "currency": "CNY",
        "deposited_on": day.isoformat(),
        "bank_reference": f"SLIP-{agent_id}",
    }
    r = await visits.client.post("/v1/me/cash-deposits", json=deposit, headers=visits.agent(a))
    assert r.status_code == 201, r.text
    slip_again = await visits.client.post(
        "/v1/me/cash-deposits", json={**deposit, "deposit_id": str(uuid.uuid4())}, headers=visits.agent(a)
    )
    assert slip_again.status_code == 409 and slip_again.json()["detail"][0]["field"] == "bank_reference"

    r = await visits.client.get(
        "/v1/team/cash",
        headers=visits.supervisor(team),
        params={"from_day": (day - timedelta(days=1)).isoformat(), "to_day": day.isoformat()},
    )
    assert r.status_code == 200, r.text
    rows = [
        (x["agent_id"], x["day"], x["collected"], x["receipts"], x["deposited"], x["undeposited"])
        for x in r.json()
    ]
    y, t = (day - timedelta(days=1)).isoformat(), day.isoformat()
    assert rows == [
        (a, y, "300.00", 1, "0.00", "300.00"),
        (a, t, "800.00", 1, "1000.00", "100.00"),
        (b, t, "50.00", 1, "0.00", "50.00"),
    ]
    only_today = await visits.client.get(
        "/v1/team/cash", headers=visits.supervisor(team), params={"from_day": t, "to_day": t}
    )
    assert [(x["agent_id"], x["undeposited"]) for x in only_today.json()] == [(a, "100.00"), (b, "50.00")], (
        "cash still in hand from before the period counts"
    )
    reversed_range = await visits.client.get(
        "/v1/team/cash", headers=visits.supervisor(team), params={"from_day": t, "to_day": y}
    )
    assert reversed_range.status_code == 422


@pytest.mark.parametrize("kind", sorted(OUTCOME_EXAMPLES))
async def test_every_documented_example_is_accepted(visits, kafka_bootstrap, agent_id, kind) -> None:
    visit = await visits.assign(agent_id)
    body = {
        **OUTCOME_EXAMPLES[kind]["value"],
        "outcome_id": str(uuid.uuid4()),
        "recorded_at": datetime.now(ZoneInfo(ZONE)).isoformat(),
    }
    if body["outcome"]["kind"] == "promise_to_pay":
        body["outcome"] = {**body["outcome"], "promised_date": (today() + timedelta(days=6)).isoformat()}
    if body.get("cash_confirmation", {}).get("method") == "otp":
        cash = body["outcome"]
        body["cash_confirmation"] = await texted_code(
            visits, kafka_bootstrap, agent_id, visit, cash["receipt_number"], cash["amount"]
        )
    r = await visits.client.post(url(visit), json=body, headers=visits.agent(agent_id))
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == kind
