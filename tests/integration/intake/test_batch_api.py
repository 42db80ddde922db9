"""The JSON batch API: idempotency, all-or-nothing, per-row errors, size, authorisation."""

import uuid

import pytest

from services.intake.csv_format import COLUMNS, row_to_document
from tests.integration.intake.conftest import Intake, types
from tests.unit.intake.files import row

pytestmark = pytest.mark.integration


def snapshot(account_id: str, **columns: str) -> dict:
    values = row(account_id, **columns)
    return row_to_document([values[c] for c in COLUMNS])


@pytest.fixture
def prefix() -> str:
    return f"B{uuid.uuid4().hex[:8].upper()}"


async def accounts(intake: Intake, prefix: str) -> list[str]:
    async with intake.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT account_id FROM accounts WHERE account_id LIKE $1 ORDER BY 1", prefix + "%"
        )
    return [r[0] for r in rows]


async def test_a_resent_batch_gets_its_first_answer_and_publishes_nothing_new(
    intake: Intake, prefix: str
) -> None:
    batch = [snapshot(f"{prefix}-1"), snapshot(f"{prefix}-2")]
    first = await intake.batch(batch, f"key-{prefix}")
    assert first.status_code == 200 and first.json()["events_published"] == 2
    assert first.headers["Idempotent-Replayed"] == "false"
    again = await intake.batch(batch, f"key-{prefix}")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = await intake.batch([snapshot(f"{prefix}-3")], f"key-{prefix}")
    assert other.status_code == 409 and other.json()["detail"][0]["field"] == "Idempotency-Key"
    assert types(await intake.events(prefix)) == ["delinquency.opened", "delinquency.opened"]


async def test_the_same_snapshots_under_a_new_key_change_nothing(intake: Intake, prefix: str) -> None:
    batch = [snapshot(f"{prefix}-1")]
    await intake.batch(batch, f"a-{prefix}")
    again = await intake.batch(batch, f"b-{prefix}")
    assert again.json()["events_published"] == 0 and again.json()["unchanged"] == 1
    assert len(await intake.events(prefix)) == 1


async def test_bad_rows_are_reported_with_field_and_reason_and_good_ones_applied(
    intake: Intake, prefix: str
) -> None:
    phone = "+8613912345678"
    batch = [
        snapshot(f"{prefix}-ok"),
        snapshot(f"{prefix}-2", overdue_amount="-5"),
        snapshot(f"{prefix}-3", principal="12,000"),
        {**snapshot(f"{prefix}-4"), "account_id": ""},
        snapshot(f"{prefix}-5", customer_name="x" * 300, customer_phone=phone + "#"),
        {**snapshot(f"{prefix}-6"), "account_id": "x'; DROP TABLE accounts;--"},
        "not an object",
    ]
    response = await intake.batch(batch, f"key-{prefix}")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1 and answer["rejected_count"] == 6
    fields = {(e["row"], e["field"]) for e in answer["rejected"]}
    assert {
        (1, "overdue_amount"),
        (2, "principal"),
        (3, "account_id"),
        (4, "customer.name"),
        (4, "customer.phone"),
        (5, "account_id"),
        (6, "(row)"),
    } <= fields
    assert all(e["reason"] for e in answer["rejected"])
    assert phone not in response.text and "DROP TABLE" not in response.text
    assert await accounts(intake, prefix) == [f"{prefix}-ok"]


async def test_all_or_nothing_rejects_the_batch_and_keeps_the_key_free(intake: Intake, prefix: str) -> None:
    batch = [snapshot(f"{prefix}-1"), snapshot(f"{prefix}-2", currency="yuan")]
    refused = await intake.batch(batch, f"key-{prefix}", all_or_nothing=True)
    assert refused.status_code == 422
    assert refused.json()["rejected"] == [
        {"row": 1, "field": "currency", "reason": "String should match pattern '^[A-Z]{3}$'"}
    ]
    assert await accounts(intake, prefix) == []
    batch[1] = snapshot(f"{prefix}-2")
    accepted = await intake.batch(batch, f"key-{prefix}", all_or_nothing=True)
    assert accepted.status_code == 200 and accepted.json()["accepted"] == 2


async def test_a_batch_of_tens_of_thousands_of_rows(intake: Intake, prefix: str) -> None:
    """Far more accounts than PostgreSQL's lock table holds: applies are serialised by one lock."""
    batch = [snapshot(f"{prefix}-{i:05d}", overdue_amount="0.00", days_past_due="0") for i in range(20_000)]
    response = await intake.batch(batch, f"key-{prefix}")
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 20_000 and response.json()["events_published"] == 0
    assert len(await accounts(intake, prefix)) == 20_000


async def test_malformed_bodies_and_missing_credentials(intake: Intake, prefix: str) -> None:
    headers = {**intake.auth(), "Idempotency-Key": f"key-{prefix}", "Content-Type": "application/json"}
    bad_json = await intake.http.post("/v1/snapshot-batches", content=b"{not json", headers=headers)
    assert bad_json.status_code == 422 and bad_json.json()["detail"][0]["field"] == "body"
    empty = await intake.http.post("/v1/snapshot-batches", json={"snapshots": []}, headers=headers)
    assert empty.status_code == 422 and empty.json()["detail"][0]["field"] == "snapshots"
    no_key = await intake.http.post("/v1/snapshot-batches", json={"snapshots": [{}]}, headers=intake.auth())
    assert no_key.status_code == 422
    anonymous = await intake.http.post("/v1/snapshot-batches", json={"snapshots": [{}]})
    assert anonymous.status_code == 401
    agent = await intake.http.post(
        "/v1/snapshot-batches",
        json={"snapshots": [{}]},
        headers={**intake.auth("agent"), "Idempotency-Key": f"key-{prefix}"},
    )
    assert agent.status_code == 403
