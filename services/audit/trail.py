"""Which events are contact attempts, and how each becomes an audit entry.

Planned, performed, refused, failed and cancelled contacts across visits, calls and SMS, with
who (the agent or the system), whom (the account), when, the outcome, the rule decision and
the event that caused it. Other events (promises, referrals) are not contacts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from shared.events import Envelope
from shared.events import payloads as p

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    event_id: UUID
    occurred_at: datetime
    account_id: str
    actor: str
    channel: str
    stage: str
    outcome: str
    decision: dict[str, Any]
    event_type: str
    caused_by: str | None


def chain_hash(prev_hash: str, seq: int, entry: AuditEntry) -> str:
    """sha256 over the previous hash and this entry's canonical JSON: edit one, break all after."""
    canonical = orjson.dumps(
        {
            "seq": seq,
            "event_id": str(entry.event_id),
            "occurred_at": entry.occurred_at.isoformat(),
            "account_id": entry.account_id,
            "actor": entry.actor,
            "channel": entry.channel,
            "stage": entry.stage,
            "outcome": entry.outcome,
            "decision": entry.decision,
            "event_type": entry.event_type,
            "caused_by": entry.caused_by,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def entry_for(event: Envelope) -> AuditEntry | None:
    mapper = _MAPPERS.get(event.type)
    if mapper is None:
        return None
    actor, channel, stage, outcome, decision = mapper(event.data)
    return AuditEntry(
        event_id=event.id,
        occurred_at=event.time,
        account_id=event.subject,
        actor=actor,
        channel=channel,
        stage=stage,
        outcome=outcome,
        decision=decision,
        event_type=event.type,
        caused_by=event.causation_id,
    )


Mapped = tuple[str, str, str, str, dict[str, Any]]


def _assigned(e: Any) -> Mapped:
    return f"agent:{e.agent_id}", "visit", "planned", "assigned", {"plan_date": e.plan_date.isoformat()}


def _rescheduled(e: Any) -> Mapped:
    return f"agent:{e.agent_id}", "visit", "planned", "rescheduled", {"plan_date": e.plan_date.isoformat()}


def _cancelled(e: Any) -> Mapped:
    return f"agent:{e.agent_id}", "visit", "cancelled", "cancelled", {"reason": e.reason}


def _checked_in(e: Any) -> Mapped:
    decision = {"suspicion_flags": list(e.suspicion_flags)}
    if e.accepted:
        return f"agent:{e.agent_id}", "visit", "performed", "checked_in", decision
    return (
        f"agent:{e.agent_id}",
        "visit",
        "refused",
        "check_in_refused",
        {**decision, "reason": e.refusal_reason},
    )


def _outcome(e: Any) -> Mapped:
    decision = {
        "recording_ref_present": e.recording_ref is not None,
        "after_cancellation": e.visit_cancelled_before,
    }
    return f"agent:{e.agent_id}", "visit", "performed", e.outcome.kind, decision


def _sms_sent(e: Any) -> Mapped:
    return "system:followup", "sms", "performed", "sent", {"template_id": e.template_id}


def _sms_delivery(e: Any) -> Mapped:
    stage = "failed" if e.status in ("failed", "expired") else "performed"
    return "system:followup", "sms", stage, f"delivery_{e.status}", {}


def _call_scheduled(e: Any) -> Mapped:
    return "system:followup", "call", "planned", "scheduled", {"reason": e.reason}


def _call_completed(e: Any) -> Mapped:
    stage = "performed" if e.result == "connected" else "failed"
    return "dialer", "call", stage, e.result, {}


def _suppressed(e: Any) -> Mapped:
    decision = {"rule": e.rule, "pack": e.pack}
    if e.next_allowed_at:
        decision["next_allowed_at"] = e.next_allowed_at.isoformat()
    return "policy", e.channel, "refused", "suppressed", decision


_MAPPERS: dict[str, Callable[[Any], Mapped]] = {
    p.VisitAssigned.model_fields["type"].default: _assigned,
    p.VisitRescheduled.model_fields["type"].default: _rescheduled,
    p.VisitCancelled.model_fields["type"].default: _cancelled,
    p.VisitCheckedIn.model_fields["type"].default: _checked_in,
    p.VisitOutcomeRecorded.model_fields["type"].default: _outcome,
    p.SmsSent.model_fields["type"].default: _sms_sent,
    p.SmsDeliveryUpdated.model_fields["type"].default: _sms_delivery,
    p.CallScheduled.model_fields["type"].default: _call_scheduled,
    p.CallCompleted.model_fields["type"].default: _call_completed,
    p.ContactSuppressed.model_fields["type"].default: _suppressed,
}
AUDITED_TYPES = tuple(_MAPPERS)
