"""The batch read of follow-up's facts stays a per-account index probe however large the book.

The follow-up bench found a batch's read growing from ~60 µs to ~6 ms per account as promises
piled up: the holds were EXISTS subqueries that PostgreSQL could answer by hashing every open
row of the table, and the prepared statement kept a generic plan made while the tables were
small. These tests pin both fixes: the plan of the query, and the service's plan cache mode.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.followup import repository
from services.followup.main import SERVICE_DIR
from services.followup.settings import FollowupSettings
from tests.conftest import migrated_pool

pytestmark = pytest.mark.integration

OPEN_PROMISES = 3000


def scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan] if "Relation Name" in plan else []
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


async def test_the_facts_of_a_batch_are_read_by_account_not_by_scanning_open_rows(database_url: str) -> None:
    settings = FollowupSettings(database_url=database_url, sms_provider_api_key="test")
    async with (
        migrated_pool(database_url, SERVICE_DIR, "f", 2, plan_cache_mode=settings.db_plan_cache_mode) as pool,
        pool.acquire() as conn,
    ):
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        await conn.execute(
            "INSERT INTO contacts (account_id, language, time_zone) "
            "SELECT 'A' || g, 'zh-CN', 'Asia/Shanghai' FROM generate_series(1, $1) g",
            OPEN_PROMISES,
        )
        await conn.execute(
            "INSERT INTO promises (promise_id, account_id, outcome_event_id, amount, currency, promised_date,"
            " status, made_at, due_check_at) SELECT gen_random_uuid(), 'A' || g, gen_random_uuid(), 100, 'CNY',"
            " current_date + 3, 'open', now(), now() + interval '4 days' FROM generate_series(1, $1) g",
            OPEN_PROMISES,
        )
        await conn.execute("ANALYZE contacts; ANALYZE promises")
        since = datetime.now(UTC) - timedelta(days=30)
        accounts = [f"A{i}" for i in range(1, 51)]
        facts = await repository.load_facts(conn, accounts, since)
        assert len(facts) == 50 and all(f.open_promise for f in facts.values())
        (row,) = await conn.fetch(f"EXPLAIN (FORMAT JSON) {repository._FACTS}", accounts, since)
    explained = json.loads(row[0]) if isinstance(row[0], str) else row[0]  # the pool may decode json
    plan = explained[0]["Plan"]
    promise_scans = [s for s in scans(plan) if s["Relation Name"] == "promises"]
    assert promise_scans, "the query reads promises"
    for scan in promise_scans:
        # Keyed by the account (an index condition naming account_id), never all open promises.
        assert "account_id" in scan.get("Index Cond", ""), scan
