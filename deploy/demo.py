"""A small demo portfolio for the dev stack: one city, 10 agents, 200 overdue accounts.

Everything goes in through the public APIs, as core banking and supervisors would send it.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from deploy.devstack import Stack

CITY = {"name": "Shenzhen", "lat": 22.543, "lon": 114.058, "tz": "Asia/Shanghai"}
DISTRICTS = ["Futian", "Luohu", "Nanshan", "Bao'an", "Longgang", "Longhua"]


def agents(count: int = 10, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "agent_id": f"AG-{i:03d}",
            "display_name": f"Agent {i:03d}",
            "team": "shenzhen-1" if i <= count // 2 else "shenzhen-2",
            "region": "shenzhen",
            "home_lat": round(CITY["lat"] + rng.uniform(-0.08, 0.08), 5),
            "home_lon": round(CITY["lon"] + rng.uniform(-0.15, 0.15), 5),
            "daily_capacity": 20,
            "languages": ["zh-CN", "en"] if i % 3 == 0 else ["zh-CN"],
            "hardship_trained": i % 2 == 0,
            "certified_until": (date.today() + timedelta(days=365)).isoformat(),
        }
        for i in range(1, count + 1)
    ]


def snapshots(
    count: int = 200, as_of: date | None = None, seed: int = 11, prefix: str = "DEMO"
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    as_of = as_of or date.today()
    rows = []
    for i in range(1, count + 1):
        principal = rng.randrange(3_000, 60_000)
        outstanding = round(principal * rng.uniform(0.3, 0.9), 2)
        overdue = round(min(outstanding, rng.uniform(300, 6_000)), 2)
        rows.append(
            {
                "account_id": f"{prefix}-LN-{i:05d}",
                "customer_id": f"{prefix}-C-{i:05d}",
                "product": rng.choice(["cash_loan", "pos_loan", "credit_card"]),
                "currency": "CNY",
                "as_of": as_of.isoformat(),
                "principal": f"{principal:.2f}",
                "outstanding": f"{outstanding:.2f}",
                "overdue_amount": f"{overdue:.2f}",
                "days_past_due": rng.choice([5, 12, 25, 40, 75, 120, 200]),
                "customer": {
                    "name": f"Demo Customer {i:05d}",
                    "phone": f"+86138{rng.randrange(10_000_000, 99_999_999)}",
                    "language": "en" if i % 10 == 0 else "zh-CN",
                    "time_zone": CITY["tz"],
                },
                "address": {
                    "line1": f"{rng.randrange(1, 300)} Demo Rd, {rng.choice(DISTRICTS)}",
                    "city": CITY["name"],
                    "country": "CN",
                    "lat": round(CITY["lat"] + rng.uniform(-0.1, 0.1), 5),
                    "lon": round(CITY["lon"] + rng.uniform(-0.2, 0.2), 5),
                },
                "flags": {"vulnerable": i % 25 == 0},
            }
        )
    return rows


def load(stack: Stack) -> dict[str, object]:
    from deploy.devstack import STATE_DIR

    supervisor = {"Authorization": f"Bearer {stack.token('sup-1', 'supervisor')}"}
    core = {"Authorization": f"Bearer {stack.token('core-banking', 'core_banking')}"}
    with httpx.Client(timeout=60) as client:
        for agent in agents():
            client.put(
                f"{stack.url('planner')}/v1/agents/{agent['agent_id']}", json=agent, headers=supervisor
            ).raise_for_status()
        response = client.post(
            f"{stack.url('intake')}/v1/snapshot-batches",
            json={"snapshots": snapshots()},
            headers={**core, "Idempotency-Key": f"demo-{date.today().isoformat()}-{uuid.uuid4().hex[:6]}"},
        )
        response.raise_for_status()
    tokens = [
        f"{role:<13} {stack.token(sub, role)}"
        for sub, role in [
            ("AG-001", "agent"),
            ("sup-1", "supervisor"),
            ("core-banking", "core_banking"),
            ("ops-1", "ops"),
            ("care-1", "care"),
        ]
    ]
    (STATE_DIR / "tokens.txt").write_text("\n".join(tokens) + "\n")
    return {
        "agents": 10,
        "accounts": response.json()["accepted"],
        "events": response.json()["events_published"],
    }
