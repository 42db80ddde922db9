"""The visits service's questions to the compliance policy (shared.compliance).

At the door the question is the customer's: may a visit happen at this instant, in the
customer's local time (contact hours, rest days, public holidays)? Whether this agent may
make it (certification, language, hardship training) was decided by the planner when it
assigned the visit, with the same policy; the visits service does not hold agents'
certificates, so it asks with the agent profile an assignment guarantees (see
services/planner/contact_hours.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.compliance import (
    Agent,
    Channel,
    ContactRequest,
    Customer,
    Decision,
    PackCatalog,
    RulePack,
    check_visit_outcome,
    decide,
)


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """What the policy needs about a visit: no name, phone or address line."""

    country: str | None
    time_zone: str
    language: str
    dpd: int


def facts_of(visit: Any) -> VisitFacts:
    briefing = visit["briefing"]
    return VisitFacts(
        country=visit["address"].get("country"),
        time_zone=visit["time_zone"],
        language=visit["language"],
        dpd=max(int(briefing.get("dpd") or 0), 0),
    )


class VisitPolicy:
    def __init__(self, catalog: PackCatalog) -> None:
        self._catalog = catalog

    def pack_for(self, facts: VisitFacts) -> RulePack:
        return self._catalog.for_account(facts.country)

    def may_visit_at(self, facts: VisitFacts, at: datetime) -> Decision:
        """The check-in's one call into the policy: may the customer be visited at `at`?"""
        local_date = at.astimezone(ZoneInfo(facts.time_zone)).date()
        assigned_agent = Agent(
            hardship_trained=False,
            certification_valid_until=local_date,
            languages=frozenset({facts.language}),
        )
        customer = Customer(time_zone=facts.time_zone, dpd=facts.dpd, language=facts.language)
        request = ContactRequest(Channel.VISIT, at, agent=assigned_agent)
        return decide(self.pack_for(facts), customer, request)

    def outcome_record_check(self, facts: VisitFacts, recording_ref: str | None) -> Decision:
        """Packs that require it (cn) refuse an outcome without the visit's recording reference."""
        return check_visit_outcome(self.pack_for(facts), recording_ref=recording_ref)
