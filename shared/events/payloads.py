"""Payloads of every event type, one frozen model each, parsed through one union.

Evolution is additive: new optional fields only. A breaking change is a new type
(the schema test in tests/unit/test_event_schemas.py enforces it).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.events import topics

Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
AccountId = Annotated[str, Field(min_length=1, max_length=64)]


class Payload(BaseModel):
    """Base of every event payload: immutable, strict about unknown fields on output."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    topic: ClassVar[str]
    account_id: AccountId


# --- value objects shared by several events -------------------------------------------


class GeoPoint(BaseModel):
    model_config = ConfigDict(frozen=True)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Address(BaseModel):
    model_config = ConfigDict(frozen=True)
    line1: str = Field(max_length=200)
    city: str = Field(max_length=100)
    region: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    location: GeoPoint | None = None


class CustomerFlags(BaseModel):
    model_config = ConfigDict(frozen=True)
    cease_contact: bool = False
    dispute: bool = False
    deceased: bool = False
    bankruptcy: bool = False
    vulnerable: bool = False
    care_hold: bool = False


class ContactDetails(BaseModel):
    """What follow-up needs to reach the customer; never logged."""

    model_config = ConfigDict(frozen=True)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    language: str = Field(default="zh-CN", max_length=16)
    time_zone: str = Field(default="Asia/Shanghai", max_length=64)


class PriorityFactor(BaseModel):
    """One contribution to a case's priority score: which input moved it, and by how much."""

    model_config = ConfigDict(frozen=True)
    factor: str = Field(max_length=64, description="the input, e.g. dpd_bucket, overdue_amount")
    input: str = Field(max_length=64, description="its value in the snapshot that was scored")
    points: float = Field(description="what it added to the score (negative: took away)")


# --- collections.delinquency.v1 ------------------------------------------------------


class DelinquencyPayload(Payload):
    topic: ClassVar[str] = topics.DELINQUENCY


class DelinquencyOpened(DelinquencyPayload):
    type: Literal["delinquency.opened"] = "delinquency.opened"
    customer_id: str = Field(max_length=64)
    product: str = Field(max_length=64)
    currency: str = Field(min_length=3, max_length=3)
    as_of: date
    principal: Money
    outstanding: Money
    overdue_amount: Money
    dpd: int = Field(ge=0)
    dpd_bucket: str
    priority_score: float = 0.0
    priority_factors: list[PriorityFactor] = Field(
        default=[], description="the contributions that add up to priority_score"
    )
    segmentation_version: str | None = Field(
        default=None, max_length=64, description="version of the segmentation config that scored it"
    )
    contact: ContactDetails
    address: Address
    flags: CustomerFlags = CustomerFlags()


class DelinquencyUpdated(DelinquencyPayload):
    type: Literal["delinquency.updated"] = "delinquency.updated"
    as_of: date
    outstanding: Money
    overdue_amount: Money
    dpd: int = Field(ge=0)
    dpd_bucket: str
    priority_score: float = 0.0
    priority_factors: list[PriorityFactor] = Field(
        default=[], description="the contributions that add up to priority_score"
    )
    segmentation_version: str | None = Field(
        default=None, max_length=64, description="version of the segmentation config that scored it"
    )
    contact: ContactDetails | None = Field(
        default=None, description="the customer's new contact data, when it changed (else null)"
    )
    address: Address | None = Field(default=None, description="the new address, when it changed (else null)")


class PaymentReceived(DelinquencyPayload):
    type: Literal["payment.received"] = "payment.received"
    as_of: date
    amount: Money
    currency: str = Field(min_length=3, max_length=3)
    overdue_amount_after: Money
    paid_on: date | None = None


class DelinquencyCured(DelinquencyPayload):
    type: Literal["delinquency.cured"] = "delinquency.cured"
    as_of: date
    reason: Literal["current", "closed"]


class CustomerFlagsChanged(DelinquencyPayload):
    type: Literal["customer.flags_changed"] = "customer.flags_changed"
    customer_id: str = Field(max_length=64)
    flags: CustomerFlags
    changed: list[str]
    reason: str | None = Field(default=None, max_length=200)


# --- corebanking.accounts.v1 (input of intake) ----------------------------------------


class AccountSnapshotChanged(Payload):
    """A core system's account change (CDC): the snapshot in intake's documented input schema.

    `snapshot` is validated by intake (services/intake/models.py, docs/intake.md) exactly as a
    batch or a file row; an invalid one goes to intake's dead-letter topic with the reason.
    """

    topic: ClassVar[str] = topics.CORE_BANKING_ACCOUNTS
    type: Literal["account.snapshot_changed"] = "account.snapshot_changed"
    snapshot: dict[str, Any] = Field(description="the account snapshot (AccountSnapshot of the batch API)")


# --- collections.assignments.v1 ------------------------------------------------------


class Briefing(BaseModel):
    """What the agent reads before the door. Empty of debt details for third parties."""

    model_config = ConfigDict(frozen=True)
    currency: str | None = None
    overdue_amount: Money | None = None
    outstanding: Money | None = None
    dpd: int | None = None
    dpd_bucket: str | None = None
    prior_contacts: int = 0
    notes: str | None = Field(default=None, max_length=2000)


class AssignmentPayload(Payload):
    topic: ClassVar[str] = topics.ASSIGNMENTS
    visit_id: UUID
    agent_id: str = Field(max_length=64)


class VisitAssigned(AssignmentPayload):
    type: Literal["visit.assigned"] = "visit.assigned"
    plan_date: date
    sequence: int = Field(ge=0)
    window_start: datetime
    window_end: datetime
    address: Address
    time_zone: str
    language: str
    customer_name: str | None = Field(default=None, max_length=200)
    briefing: Briefing
    team: str | None = Field(
        default=None, max_length=64, description="the agent's team: its supervisors see the visit"
    )


class VisitRescheduled(AssignmentPayload):
    type: Literal["visit.rescheduled"] = "visit.rescheduled"
    plan_date: date
    sequence: int = Field(ge=0)
    window_start: datetime
    window_end: datetime


class VisitCancelled(AssignmentPayload):
    type: Literal["visit.cancelled"] = "visit.cancelled"
    reason: str = Field(max_length=200)


# --- collections.visit-outcomes.v1 ---------------------------------------------------


class PaidOnSite(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["paid_on_site"] = "paid_on_site"
    amount: Money
    receipt_number: str = Field(min_length=1, max_length=64)


class PromiseToPay(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["promise_to_pay"] = "promise_to_pay"
    amount: Money
    promised_date: date


class PartialPayment(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["partial_payment"] = "partial_payment"
    amount: Money
    receipt_number: str = Field(min_length=1, max_length=64)


class CustomerAbsent(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["customer_absent"] = "customer_absent"


class Refused(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["refused"] = "refused"


class HardshipReported(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["hardship_reported"] = "hardship_reported"
    category: Literal["job_loss", "illness", "bereavement", "income_drop", "disaster", "other"]
    referral_consent: bool


class DisputeRaised(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["dispute_raised"] = "dispute_raised"


class MovedAddress(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["moved_or_wrong_address"] = "moved_or_wrong_address"
    new_address: Address | None = None


class ThirdPartyOnly(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["third_party_only"] = "third_party_only"


class UnsafeLocation(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["unsafe_location"] = "unsafe_location"


class Deceased(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["deceased"] = "deceased"


Outcome = Annotated[
    PaidOnSite
    | PromiseToPay
    | PartialPayment
    | CustomerAbsent
    | Refused
    | HardshipReported
    | DisputeRaised
    | MovedAddress
    | ThirdPartyOnly
    | UnsafeLocation
    | Deceased,
    Field(discriminator="kind"),
]


class VisitOutcomePayload(Payload):
    topic: ClassVar[str] = topics.VISIT_OUTCOMES
    visit_id: UUID
    agent_id: str = Field(max_length=64)


class VisitCheckedIn(VisitOutcomePayload):
    type: Literal["visit.checked_in"] = "visit.checked_in"
    checkin_id: UUID
    checked_in_at: datetime
    accepted: bool
    refusal_reason: str | None = None
    refusal_rule: str | None = Field(
        default=None, max_length=64, description="the rule that refused it, e.g. cn.quiet_hours"
    )
    suspicion_flags: list[str] = []


class VisitOutcomeRecorded(VisitOutcomePayload):
    type: Literal["visit.outcome_recorded"] = "visit.outcome_recorded"
    outcome_id: UUID
    recorded_at: datetime
    outcome: Outcome
    currency: str | None = None
    recording_ref: str | None = Field(default=None, max_length=200)
    visit_cancelled_before: bool = False


class CashConfirmationRequested(VisitOutcomePayload):
    """An agent took cash at the door: text the customer a one-time code confirming it.

    For follow-up's SMS channel, to the phone it holds for the account (never a number the
    agent gives). The customer reads the code back to the agent only if amount and receipt
    are right; visits checks it when the cash outcome is recorded (single use, expiring).
    """

    type: Literal["visit.cash_confirmation_requested"] = "visit.cash_confirmation_requested"
    confirmation_id: UUID
    code: str = Field(pattern=r"^[0-9]{6}$", description="the one-time code the SMS carries")
    amount: Money
    currency: str = Field(min_length=3, max_length=3)
    receipt_number: str = Field(min_length=1, max_length=64)
    expires_at: datetime


# --- collections.followups.v1 --------------------------------------------------------


class FollowupPayload(Payload):
    topic: ClassVar[str] = topics.FOLLOWUPS


class SmsSent(FollowupPayload):
    type: Literal["sms.sent"] = "sms.sent"
    job_id: UUID
    template_id: str
    language: str
    provider_message_id: str
    trigger_event_id: UUID
    sent_at: datetime


class SmsDeliveryUpdated(FollowupPayload):
    type: Literal["sms.delivery_updated"] = "sms.delivery_updated"
    job_id: UUID
    provider_message_id: str
    status: Literal["delivered", "failed", "expired", "unknown"]
    updated_at: datetime


class CallScheduled(FollowupPayload):
    type: Literal["call.scheduled"] = "call.scheduled"
    task_id: UUID
    due_at: datetime
    reason: str


class CallCompleted(FollowupPayload):
    type: Literal["call.completed"] = "call.completed"
    task_id: UUID
    completed_at: datetime
    result: Literal["connected", "no_answer", "busy", "wrong_number", "refused"]


class CareReferred(FollowupPayload):
    type: Literal["care.referred"] = "care.referred"
    referral_id: UUID
    program: Literal["deferral", "restructuring", "counselling"]
    rule: str


class PromiseKept(FollowupPayload):
    type: Literal["promise.kept"] = "promise.kept"
    promise_id: UUID


class PromiseBroken(FollowupPayload):
    type: Literal["promise.broken"] = "promise.broken"
    promise_id: UUID
    broken_count: int = Field(ge=1)


class RevisitRequested(FollowupPayload):
    type: Literal["revisit.requested"] = "revisit.requested"
    reason: str
    not_before: date | None = None


class ContactSuppressed(FollowupPayload):
    type: Literal["contact.suppressed"] = "contact.suppressed"
    channel: Literal["visit", "call", "sms"]
    rule: str
    pack: str
    next_allowed_at: datetime | None = None
    pack_version: str | None = None
    action: str | None = Field(default=None, description="what was refused, e.g. sms.promise_reminder")
    disposition: Literal["deferred", "dropped"] | None = Field(
        default=None, description="deferred to next_allowed_at, or dropped for good"
    )


EventPayload = Annotated[
    DelinquencyOpened
    | DelinquencyUpdated
    | PaymentReceived
    | DelinquencyCured
    | CustomerFlagsChanged
    | AccountSnapshotChanged
    | VisitAssigned
    | VisitRescheduled
    | VisitCancelled
    | VisitCheckedIn
    | VisitOutcomeRecorded
    | CashConfirmationRequested
    | SmsSent
    | SmsDeliveryUpdated
    | CallScheduled
    | CallCompleted
    | CareReferred
    | PromiseKept
    | PromiseBroken
    | RevisitRequested
    | ContactSuppressed,
    Field(discriminator="type"),
]

payload_adapter: TypeAdapter[EventPayload] = TypeAdapter(EventPayload)

PAYLOAD_TYPES: dict[str, type[Payload]] = {
    model.model_fields["type"].default: model for model in get_args(get_args(EventPayload)[0])
}
