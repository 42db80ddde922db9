"""Builders shared by the compliance tests: local times, requests, agents, histories."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.compliance import (
    Agent,
    Channel,
    ContactHistory,
    ContactRecord,
    ContactRequest,
    Customer,
    Decision,
    Purpose,
    Recipient,
    RulePack,
    decide,
    load_pack,
)

# A typical customer time zone per pack, and an ordinary working Tuesday (no holiday anywhere).
PACK_ZONES = {
    "cn": "Asia/Shanghai",
    "us": "America/New_York",
    "uk": "Europe/London",
    "ie": "Europe/Dublin",
    "in": "Asia/Kolkata",
    "id": "Asia/Jakarta",
    "ph": "Asia/Manila",
    "vn": "Asia/Ho_Chi_Minh",
}
TUESDAY = date(2026, 3, 10)
CERTIFIED = Agent(
    hardship_trained=False, certification_valid_until=date(2030, 12, 31), languages=frozenset({"zh"})
)
HARDSHIP = Agent(
    hardship_trained=True, certification_valid_until=date(2030, 12, 31), languages=frozenset({"zh"})
)


def local(zone: str, day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An aware datetime at a local wall-clock time in `zone`."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ZoneInfo(zone))


def request(
    channel: Channel,
    at: datetime,
    *,
    purpose: Purpose = Purpose.COLLECTION,
    recipient: Recipient = Recipient.DEBTOR,
    number_id: str | None = "n1",
    agent: Agent | None = None,
) -> ContactRequest:
    """A request; visits get a certified agent unless one is given."""
    if channel is Channel.VISIT and agent is None:
        agent = CERTIFIED
    return ContactRequest(channel, at, purpose, recipient, number_id, agent)


def decide_at(
    pack_id: str | RulePack,
    customer: Customer,
    channel: Channel,
    at: datetime,
    history: ContactHistory | None = None,
    *,
    purpose: Purpose = Purpose.COLLECTION,
    recipient: Recipient = Recipient.DEBTOR,
    number_id: str | None = "n1",
    agent: Agent | None = None,
) -> Decision:
    """Decide under a pack (by id or compiled) with a request built by `request`."""
    pack = load_pack(pack_id) if isinstance(pack_id, str) else pack_id
    contact = request(channel, at, purpose=purpose, recipient=recipient, number_id=number_id, agent=agent)
    return decide(pack, customer, contact, history)


def history_of(zone: str, *records: ContactRecord) -> ContactHistory:
    return ContactHistory(zone, records)


def calls(
    zone: str,
    first: datetime,
    count: int,
    *,
    every: timedelta,
    connected: bool = False,
    number_id: str = "n1",
) -> list[ContactRecord]:
    return [
        ContactRecord(Channel.CALL, first + every * index, connected=connected, number_id=number_id)
        for index in range(count)
    ]


def assert_names_pack(decision: Decision, pack_id: str) -> None:
    """Every decision names its pack, the pack's version and a rule of that pack."""
    pack = load_pack(pack_id)
    assert decision.pack_id == pack_id
    assert decision.pack_version == pack.version
    assert decision.rule_id.startswith(f"{pack_id}.")
    assert decision.rule_id.removeprefix(f"{pack_id}.") in pack.rules
    assert decision.reason
