"""Follow-up's facts about an account, and the contracts of its HTTP API."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events import Envelope
from shared.events.envelope import child_traceparent
from shared.events.payloads import Payload

Channel = Literal["sms", "call", "visit"]
LedgerKind = Literal["sms", "call", "visit", "payment", "promise"]


@dataclass(frozen=True, slots=True)
class Trigger:
    """The event that caused a contact, as its row keeps it (trigger_event_id, trigger_traceparent,
    trigger_correlation_id): events published later, when the contact is made or changes, are
    caused by it, so they continue its correlation and its trace (a child span)."""

    event_id: UUID
    traceparent: str | None = None
    correlation_id: str | None = None

    @classmethod
    def of(cls, event: Envelope) -> Trigger:
        return cls(event.id, event.traceparent, event.correlation_id or str(event.id))

    @classmethod
    def of_row(cls, row: Any) -> Trigger:
        """From a job row; rows written before the trace was kept start a trace of their own."""
        return cls(row["trigger_event_id"], row["trigger_traceparent"], row["trigger_correlation_id"])

    def caused(self, data: Payload, source: str) -> Envelope:
        """An event caused by the trigger, published now (the same contract as Envelope.caused)."""
        return Envelope(
            data=data,
            source=source,
            correlation_id=self.correlation_id,
            causation_id=str(self.event_id),
            traceparent=child_traceparent(self.traceparent, str(data.type)),  # type: ignore[attr-defined]
        )


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One line of the contact ledger: a contact made or a fact that changes what is useful."""

    source_id: UUID
    kind: str
    occurred_at: datetime
    recorded_at: datetime
    connected: bool = False
    number_id: str | None = None
    amount: Decimal | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What follow-up knows about a customer: how to reach them and what the policy needs.

    The phone number is only ever handed to a provider; it is left out of repr so that a
    stray log line or traceback cannot carry it.
    """

    account_id: str
    time_zone: str
    language: str
    phone: str | None = field(default=None, repr=False)
    customer_id: str | None = None
    country: str | None = None
    product: str | None = None
    dpd: int = 0
    flags: Mapping[str, bool] = field(default_factory=dict)
    sms_opt_out: bool = False
    call_opt_out: bool = False
    ledger: tuple[LedgerEntry, ...] = ()
    # Actions of the account's pending SMS and calls, and whether a promise is open: what a
    # new fact could cancel or supersede (nothing to do when empty: no query).
    pending: frozenset[str] = frozenset()
    open_promise: bool = False

    @property
    def number_id(self) -> str | None:
        """An opaque id of the phone number: what per-number caps count, never the number."""
        if not self.phone:
            return None
        return "n-" + hashlib.sha256(self.phone.encode()).hexdigest()[:16]

    def flag(self, name: str) -> bool:
        return bool(self.flags.get(name, False))


# --- the dialer's API ------------------------------------------------------------------


class AgentProfile(BaseModel):
    """The call-centre agent who will dial: what the compliance policy checks about them."""

    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(min_length=1, max_length=64)
    hardship_trained: bool = False
    certified_until: date | None = None
    languages: list[str] = Field(default_factory=list, max_length=10)


class CallClaimIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "max_tasks": 5,
                "agent": {
                    "agent_id": "CC-017",
                    "hardship_trained": True,
                    "certified_until": "2027-06-30",
                    "languages": ["zh-CN", "en"],
                },
            }
        },
    )
    max_tasks: int = Field(default=10, ge=1, le=100)
    agent: AgentProfile


class ClaimedCall(BaseModel):
    """A call the dialer may place now; leased to the agent until `lease_until`."""

    task_id: UUID
    account_id: str
    reason: str
    purpose: str
    language: str
    phone: str
    due_at: datetime
    lease_until: datetime


class CallResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: Literal["connected", "no_answer", "busy", "wrong_number", "refused"]
    completed_at: AwareDatetime | None = None
    stop_calling: bool = Field(
        default=False, description="the customer asked not to be called: honoured for the call channel"
    )


class CallTaskView(BaseModel):
    task_id: UUID
    account_id: str
    action: str
    reason: str
    purpose: str
    status: str
    due_at: datetime
    claimed_by: str | None
    lease_until: datetime | None
    result: str | None
    completed_at: datetime | None
    closed_reason: str | None


# --- the care team's and the dispute team's API -----------------------------------------


class ReferralView(BaseModel):
    referral_id: UUID
    account_id: str
    program: str
    rule: str
    category: str
    status: str
    accepted_by: str | None
    accepted_at: datetime | None
    closed_by: str | None
    closed_at: datetime | None
    resolution: str | None
    created_at: datetime


class ReferralCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: Literal["plan_agreed", "declined", "unreachable", "not_eligible"]


class DisputeView(BaseModel):
    dispute_id: UUID
    account_id: str
    status: str
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime


class DisputeResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: Literal["upheld", "rejected", "corrected"]


# --- the SMS gateway's webhooks ----------------------------------------------------------

ProviderStatus = Literal["accepted", "sent", "delivered", "undelivered", "failed", "expired", "unknown"]


class DeliveryReceiptIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message_id: str = Field(min_length=1, max_length=128)
    status: ProviderStatus
    idempotency_key: str | None = Field(default=None, max_length=128)
    updated_at: AwareDatetime


class InboundSmsIn(BaseModel):
    """A reply from a customer. The number and text are used, then forgotten."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    message_id: str = Field(min_length=1, max_length=128)
    sender: str = Field(alias="from", min_length=3, max_length=32)
    text: str = Field(max_length=1600)
    received_at: AwareDatetime
