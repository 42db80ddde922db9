"""What intake lists about accounts: contact data only for the roles that need it."""

import uuid

import pytest

from tests.integration.intake.conftest import Intake
from tests.unit.intake.files import csv_bytes, row

pytestmark = pytest.mark.integration


@pytest.fixture
async def loaded(intake: Intake) -> str:
    prefix = f"A{uuid.uuid4().hex[:8].upper()}"
    rows = [
        row(f"{prefix}-1", customer_name="陈静怡", customer_phone="+8613812345678", flags_vulnerable="1"),
        row(f"{prefix}-2", days_past_due="120", last_payment_date="2026-11-20", last_payment_amount="100.00"),
        row(f"{prefix}-3", overdue_amount="0.00", days_past_due="0"),
    ]
    assert (await intake.upload(csv_bytes(rows))).status_code == 201
    return prefix


async def test_roles_that_do_not_need_contact_data_see_it_masked(intake: Intake, loaded: str) -> None:
    for role in ("ops", "supervisor", "auditor"):
        response = await intake.http.get(f"/v1/accounts/{loaded}-1", headers=intake.auth(role))
        assert response.status_code == 200, response.text
        account = response.json()
        assert account["contact_masked"] is True
        assert account["customer"]["phone"] == "*********5678" and account["customer"]["name"] == "陈**"
        assert account["address"]["line1"] == "***" and account["address"]["city"] == "Shenzhen"
        assert account["address"]["lat"] == 22.54
        assert "13812345678" not in response.text and "静怡" not in response.text


async def test_core_banking_and_care_see_contact_data(intake: Intake, loaded: str) -> None:
    for role in ("core_banking", "care"):
        account = (await intake.http.get(f"/v1/accounts/{loaded}-1", headers=intake.auth(role))).json()
        assert account["contact_masked"] is False
        assert account["customer"] == {
            "name": "陈静怡",
            "phone": "+8613812345678",
            "language": "zh-CN",
            "time_zone": "Asia/Shanghai",
        }
        assert account["address"]["line1"] == "1 Example Rd"


async def test_agents_cannot_read_accounts_here(intake: Intake, loaded: str) -> None:
    response = await intake.http.get(f"/v1/accounts/{loaded}-1", headers=intake.auth("agent"))
    assert response.status_code == 403
    missing = await intake.http.get(f"/v1/accounts/{loaded}-404", headers=intake.auth("ops"))
    assert missing.status_code == 404


async def test_the_priority_is_explained_by_its_factors(intake: Intake, loaded: str) -> None:
    version = (await intake.http.get("/v1/segmentation", headers=intake.auth("ops"))).json()["version"]
    vulnerable = (await intake.http.get(f"/v1/accounts/{loaded}-1", headers=intake.auth("ops"))).json()
    paid = (await intake.http.get(f"/v1/accounts/{loaded}-2", headers=intake.auth("ops"))).json()
    for account in (vulnerable, paid):
        priority = account["priority"]
        assert priority["segmentation_version"] == version
        assert sum(f["points"] for f in priority["factors"]) == pytest.approx(priority["score"])
    assert {"factor": "vulnerable", "input": "true", "points": -1.0} in vulnerable["priority"]["factors"]
    assert any(f["factor"] == "recent_payment" for f in paid["priority"]["factors"])
    assert paid["dpd_bucket"] == "91-180"


async def test_listing_pages_and_filters(intake: Intake, loaded: str) -> None:
    after = f"{loaded}-"
    seen = []
    while True:
        page = (
            await intake.http.get(
                "/v1/accounts",
                params={"after": after, "limit": 2, "delinquent": "true"},
                headers=intake.auth("ops"),
            )
        ).json()
        seen += [a["account_id"] for a in page["accounts"] if a["account_id"].startswith(loaded)]
        if page["next_after"] is None or not page["next_after"].startswith(loaded):
            break
        after = page["next_after"]
    assert seen == [f"{loaded}-1", f"{loaded}-2"]
    assert all(a["contact_masked"] for a in page["accounts"])
