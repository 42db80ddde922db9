"""When a customer may lawfully be visited on a day: the compliance policy, asked per case.

The windows are asked for the agent profile the routing guarantees (skills: the customer's
language, hardship training for a vulnerable customer; planning only uses agents certified on
the day), so every visit the solver places inside them is one `decide` allows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from shared.compliance import Agent, Channel, Customer, PackCatalog, allowed_windows_on_date


def customer_of(row: Any) -> Customer:
    """The compliance view of a planner case row (no personal data)."""
    flags, contact = row["flags"], row["contact"]
    return Customer(
        time_zone=contact["time_zone"],
        dpd=row["dpd"],
        cease_contact=bool(flags.get("cease_contact")),
        dispute=bool(flags.get("dispute")),
        deceased=bool(flags.get("deceased")),
        bankruptcy=bool(flags.get("bankruptcy")),
        care_hold=bool(flags.get("care_hold")),
        vulnerable=bool(flags.get("vulnerable")),
        language=contact.get("language"),
    )


def qualified_agent(row: Any, plan_date: date) -> Agent:
    contact = row["contact"]
    return Agent(
        hardship_trained=bool(row["flags"].get("vulnerable")),
        certification_valid_until=plan_date,
        languages=frozenset({contact.get("language", "zh-CN")}),
    )


def legal_visit_windows(catalog: PackCatalog, row: Any, plan_date: date) -> list[tuple[datetime, datetime]]:
    """The UTC intervals of the customer's local `plan_date` in which a visit is allowed."""
    pack = catalog.for_account(row["address"].get("country"))
    return allowed_windows_on_date(
        pack, customer_of(row), Channel.VISIT, plan_date, agent=qualified_agent(row, plan_date)
    )
