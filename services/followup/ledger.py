"""The contact ledger, read: history for the compliance policy and "is this contact pointless?".

Pure functions over ledger entries (services/followup/models.LedgerEntry), so the rules are
unit-tested without a database.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from uuid import UUID

from services.followup.models import LedgerEntry
from services.followup.rules import Rules
from shared.compliance import Channel, ContactHistory, ContactRecord

# Ledger kinds that are contacts with the customer, and their compliance channel.
CONTACT_CHANNELS = {"sms": Channel.SMS, "call": Channel.CALL, "visit": Channel.VISIT}
# The longest window a compliance pack counts is 7 local days: 8 days of history suffice.
HISTORY_DAYS = 8


def facts_of(entry: LedgerEntry) -> frozenset[str]:
    """The facts one ledger entry establishes (names used by rules.toml [ledger.pointless])."""
    if entry.kind == "payment":
        return frozenset({"payment", "payment_cleared"} if entry.detail == "cleared" else {"payment"})
    if entry.kind == "promise":
        return frozenset({"promise"})
    if entry.kind == "visit":
        return frozenset({"visit", "visit_met"} if entry.connected else {"visit"})
    if entry.kind == "call":
        return frozenset({"call", "call_connected"} if entry.connected else {"call"})
    return frozenset({entry.kind})


def pointless_because(
    rules: Rules,
    action: str,
    entries: Iterable[LedgerEntry],
    decided_at: datetime,
    exclude: Collection[UUID] = (),
) -> str | None:
    """The fact that makes a pending contact pointless, or None if it is still worth making.

    A fact counts when the ledger learnt it after the contact was decided, or within the
    look-back before (a call decided an hour after a payment arrived is just as pointless).
    `exclude` names the contact's own trigger and job, which never cancel it.
    """
    cancels = rules.ledger.pointless.get(action)
    if not cancels:
        return None
    since = decided_at - timedelta(hours=rules.ledger.lookback_hours)
    for entry in entries:
        if entry.recorded_at <= since or entry.source_id in exclude:
            continue
        for fact in cancels:
            if fact in facts_of(entry):
                return fact
    return None


def in_a_row(entries: Iterable[LedgerEntry], outcome_kind: str) -> int:
    """How many visits in a row ended with `outcome_kind`, counting back to the last meeting."""
    count = 0
    for entry in sorted((e for e in entries if e.kind == "visit"), key=_newest_first):
        if entry.connected or entry.detail != outcome_kind:
            break
        count += 1
    return count


def contact_history(entries: Iterable[LedgerEntry], time_zone: str) -> ContactHistory:
    """Every contact in the ledger as the compliance policy counts it (in the customer's zone)."""
    return ContactHistory(
        time_zone,
        [
            ContactRecord(CONTACT_CHANNELS[e.kind], e.occurred_at, e.connected, e.number_id)
            for e in entries
            if e.kind in CONTACT_CHANNELS
        ],
    )


def _newest_first(entry: LedgerEntry) -> tuple[float, float]:
    return (-entry.occurred_at.timestamp(), -entry.recorded_at.timestamp())
