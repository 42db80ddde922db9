"""Every contact follow-up makes passes here: the shared compliance policy, then our hours.

`ContactGate.decide` is the one call into `shared.compliance` for "may this contact happen
now?"; `ContactGate.place` schedules a contact: it proposes the first instant in our
preferred local hours, asks the policy, and when the policy refuses it finds the next time
both allow (or none: the contact is dropped). The refusing decision is returned so that the
caller audits it (contact.suppressed) in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from services.followup.ledger import contact_history
from services.followup.models import AccountFacts
from services.followup.rules import ContactHours
from shared.compliance import (
    Agent,
    Channel,
    ContactHistory,
    ContactRequest,
    Customer,
    Decision,
    PackCatalog,
    Purpose,
    RulePack,
    decide,
    earliest_allowed_in_window,
)

GateChannel = Literal["sms", "call"]
# Rule ids that refuse an agent rather than the contact: another agent may still make it.
AGENT_RULES = ("agent_required", "agent_certification", "agent_language", "vulnerable_agent")
_MAX_DAYS_SEARCHED = 31


@dataclass(frozen=True, slots=True)
class ContactKind:
    """Which contact: its channel, its action (what it is for, e.g. sms.promise_reminder), its purpose."""

    channel: GateChannel
    action: str
    purpose: str


@dataclass(frozen=True, slots=True)
class Placement:
    """When to make a contact: `due_at` None means it may not happen in the time allowed.

    `refusal` is the policy's refusal of the first proposed time (to audit), if any.
    """

    due_at: datetime | None
    refusal: Decision | None


class ContactGate:
    def __init__(self, catalog: PackCatalog, hours: ContactHours) -> None:
        self._catalog = catalog
        self._hours = hours
        # The compliance view of the facts last asked about: a handler asks several times
        # about one account, and facts are immutable, so identity is a safe key.
        self._last: tuple[AccountFacts, Customer, ContactHistory] | None = None

    def views(self, facts: AccountFacts) -> tuple[Customer, ContactHistory]:
        """The policy's view of these facts: the customer and the contact history."""
        last = self._last
        if last is not None and last[0] is facts:
            return last[1], last[2]
        customer, history = customer_of(facts), _history(facts)
        self._last = (facts, customer, history)
        return customer, history

    def pack_for(self, facts: AccountFacts) -> RulePack:
        return self._catalog.for_account(facts.country, facts.product)

    def decide(
        self,
        facts: AccountFacts,
        kind: ContactKind,
        at: datetime,
        agent: Agent | None = None,
        history: ContactHistory | None = None,
    ) -> Decision:
        """May this contact happen at `at`? The shared policy, with the ledger as history."""
        request = _request(facts, kind, at, agent)
        customer, known = self.views(facts)
        return decide(self.pack_for(facts), customer, request, history or known)

    def place(
        self,
        facts: AccountFacts,
        kind: ContactKind,
        earliest: datetime,
        latest: datetime,
        agent: Agent | None = None,
    ) -> Placement:
        """The first time in [earliest, latest) in our hours that the policy allows.

        The policy is asked about the time the contact is wanted (`earliest`): a refusal
        there is what gets audited. Our own hours only shape when, within what it allows.
        """
        history = self.views(facts)[1]
        decision = self.decide(facts, kind, earliest, agent, history)
        if not decision.allowed:
            return Placement(self.next_slot(facts, kind, earliest, latest, agent, history), decision)
        proposed = self.first_preferred(kind, earliest, facts.time_zone)
        if proposed >= latest:
            return Placement(None, None)
        if proposed == earliest:
            return Placement(proposed, None)
        later = self.decide(facts, kind, proposed, agent, history)
        if later.allowed:
            return Placement(proposed, None)
        return Placement(self.next_slot(facts, kind, proposed, latest, agent, history), later)

    def first_preferred(self, kind: ContactKind, earliest: datetime, time_zone: str) -> datetime:
        """The first instant >= earliest inside our preferred local hours."""
        start, end = self._hours.minutes(kind.channel, kind.action)
        local = earliest.astimezone(ZoneInfo(time_zone))
        minute = local.hour * 60 + local.minute
        if start <= minute < end:
            return earliest
        day = local.date() if minute < start else local.date() + timedelta(days=1)
        return local_instant(day, start, time_zone)

    def preferred_window(self, kind: ContactKind, day: date, time_zone: str) -> tuple[datetime, datetime]:
        """Our preferred hours on a local date, as UTC instants."""
        start, end = self._hours.minutes(kind.channel, kind.action)
        return local_instant(day, start, time_zone), local_instant(day, end, time_zone)

    def next_slot(
        self,
        facts: AccountFacts,
        kind: ContactKind,
        start: datetime,
        latest: datetime,
        agent: Agent | None = None,
        history: ContactHistory | None = None,
    ) -> datetime | None:
        """The first instant in [start, latest) in our hours that the policy allows, if any."""
        customer, known = self.views(facts)
        pack, history = self.pack_for(facts), history or known
        day = start.astimezone(ZoneInfo(facts.time_zone)).date()
        for _ in range(_MAX_DAYS_SEARCHED):
            opens, closes = self.preferred_window(kind, day, facts.time_zone)
            if opens >= latest:
                return None
            window_start, window_end = max(opens, start), min(closes, latest)
            if window_start < window_end:
                request = _request(facts, kind, window_start, agent)
                found = earliest_allowed_in_window(pack, customer, request, window_end, history)
                if found is not None:
                    return found
            day += timedelta(days=1)
        return None


def customer_of(facts: AccountFacts) -> Customer:
    """The compliance view of a customer: zone, DPD, flags, opted-out channels. No personal data."""
    opted_out = frozenset(
        channel
        for channel, out in ((Channel.SMS, facts.sms_opt_out), (Channel.CALL, facts.call_opt_out))
        if out
    )
    return Customer(
        time_zone=facts.time_zone,
        dpd=max(facts.dpd, 0),
        cease_contact=facts.flag("cease_contact"),
        dispute=facts.flag("dispute"),
        deceased=facts.flag("deceased"),
        bankruptcy=facts.flag("bankruptcy"),
        care_hold=facts.flag("care_hold"),
        vulnerable=facts.flag("vulnerable"),
        opted_out_channels=opted_out,
        language=facts.language,
    )


def planning_agent(facts: AccountFacts, today: date) -> Agent:
    """The agent a call is planned for before anyone claims it: certified, speaking the
    customer's language and hardship-trained; the dialer's real agent is checked at claim."""
    return Agent(
        hardship_trained=True,
        certification_valid_until=today + timedelta(days=366),
        languages=frozenset({facts.language}),
    )


def is_agent_refusal(decision: Decision) -> bool:
    return decision.rule_id.split(".", 1)[-1] in AGENT_RULES


def local_instant(day: date, minute: int, time_zone: str) -> datetime:
    """The UTC instant of a local date and minute of the day (24:00 is the next midnight)."""
    if minute >= 1440:
        day, minute = day + timedelta(days=1), minute - 1440
    local = datetime.combine(day, time(minute // 60, minute % 60), ZoneInfo(time_zone))
    return local.astimezone(UTC)


def _request(facts: AccountFacts, kind: ContactKind, at: datetime, agent: Agent | None) -> ContactRequest:
    return ContactRequest(
        Channel(kind.channel), at, Purpose(kind.purpose), number_id=facts.number_id, agent=agent
    )


def _history(facts: AccountFacts) -> ContactHistory:
    return contact_history(facts.ledger, facts.time_zone)
