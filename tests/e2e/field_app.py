"""What the agent's app does in the end-to-end tests: wait for today's visits, record a promise."""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import eventually


async def my_visits(http: httpx.AsyncClient, visits_url: str, agent: dict[str, str], count: int,
                    timeout_s: float) -> list[dict[str, Any]]:  # fmt: skip
    """The agent's visits once the planner has assigned `count` of them."""

    async def assigned() -> list[dict[str, Any]] | None:
        r = await http.get(f"{visits_url}/v1/me/visits", headers=agent)
        return r.json() if r.status_code == 200 and len(r.json()) == count else None

    return await eventually(assigned, timeout_s=timeout_s)


def promise_outcome(recording_ref: str) -> dict[str, Any]:
    """A promise to pay recorded now, dated five days ahead (relative: no calendar trap)."""
    return {
        "outcome_id": str(uuid.uuid4()),
        "recorded_at": datetime.now(UTC).isoformat(),
        "outcome": {
            "kind": "promise_to_pay",
            "amount": "300.00",
            "promised_date": (date.today() + timedelta(days=5)).isoformat(),
        },
        "recording_ref": recording_ref,
    }
