"""What a compliance decision is asked about and what it answers.

Inputs are frozen, slotted dataclasses that precompute, once, what every decision needs
(epoch seconds, the zone's clock, a bitmask of suppression flags), so a decision itself
does integer arithmetic only. None of them holds a name, phone number or address:
numbers are referred to by an opaque id the caller chooses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import IntFlag, StrEnum
from typing import NamedTuple

from shared.compliance.clock import MINUTES_PER_DAY, ZoneClock, clock_for, day_of


class Channel(StrEnum):
    VISIT = "visit"
    CALL = "call"
    SMS = "sms"


class Purpose(StrEnum):
    """Why a contact is made. Only suppression exceptions look at anything but COLLECTION."""

    COLLECTION = "collection"
    DISPUTE_RESPONSE = "dispute_response"
    CEASE_CONFIRMATION = "cease_confirmation"
    CARE = "care"
    LOCATE_DEBTOR = "locate_debtor"


class Recipient(StrEnum):
    DEBTOR = "debtor"
    THIRD_PARTY = "third_party"


class Suppression(StrEnum):
    """Customer states that stop contact (each pack documents its exceptions)."""

    DECEASED = "deceased"
    BANKRUPTCY = "bankruptcy"
    BREATHING_SPACE = "breathing_space"
    CEASE_CONTACT = "cease_contact"
    DISPUTE = "dispute"
    CARE_HOLD = "care_hold"


class CustomerState(IntFlag):
    """Bit per state that sends a decision down the (slower) eligibility path."""

    NONE = 0
    DECEASED = 1
    BANKRUPTCY = 2
    BREATHING_SPACE = 4
    CEASE_CONTACT = 8
    DISPUTE = 16
    CARE_HOLD = 32
    VULNERABLE = 64
    OPTED_OUT = 128


@dataclass(frozen=True, slots=True)
class LocalWindow:
    """A daily window of local wall-clock time, e.g. hours a customer consented to.

    `end` before `start` crosses midnight (22:00–01:00); `end == start` is the whole day.
    """

    start: time
    end: time

    def minute_spans(self) -> tuple[tuple[int, int], ...]:
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        if start == end:
            return ((0, MINUTES_PER_DAY),)
        if start < end:
            return ((start, end),)
        return ((0, end), (start, MINUTES_PER_DAY)) if end else ((start, MINUTES_PER_DAY),)


@dataclass(frozen=True, slots=True)
class BreathingSpace:
    """A debt-respite moratorium (England & Wales' Breathing Space and the like).

    Standard: no contact for the pack's `days` from `start`. Mental-health crisis: no
    contact while treatment lasts (`treatment_ended` unknown) and for the pack's
    `mental_health_days_after_treatment` after it ends.
    """

    start: date
    mental_health_crisis: bool = False
    treatment_ended: date | None = None


@dataclass(frozen=True, slots=True)
class Agent:
    """The collector who would make the contact. Identity stays with the caller."""

    hardship_trained: bool
    certification_valid_until: date | None
    languages: frozenset[str] = frozenset()
    # Last local day number on which the certification is valid (-1: never certified).
    certified_through_day: int = field(init=False, repr=False, compare=False)
    primary_languages: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        through = -1 if self.certification_valid_until is None else day_of(self.certification_valid_until)
        object.__setattr__(self, "certified_through_day", through)
        object.__setattr__(self, "primary_languages", frozenset(map(_primary_subtag, self.languages)))

    def speaks(self, language: str) -> bool:
        """True when the agent shares the language (same primary subtag: zh-CN ~ zh)."""
        return _primary_subtag(language) in self.primary_languages


def _primary_subtag(language: str) -> str:
    return language.split("-", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class Customer:
    """The facts about a debtor that decide contact. No personal data.

    `time_zone` is the IANA zone of the customer's address (never guessed from a phone
    prefix); `dpd` is days past due as of the contact; `consented_hours` is a window the
    customer agreed to be contacted in, honoured only where the pack allows consent.
    """

    time_zone: str
    dpd: int = 0
    cease_contact: bool = False
    dispute: bool = False
    deceased: bool = False
    bankruptcy: bool = False
    care_hold: bool = False
    care_hold_until: date | None = None
    vulnerable: bool = False
    breathing_space: BreathingSpace | None = None
    own_number_invalid: bool = False
    consented_hours: LocalWindow | None = None
    opted_out_channels: frozenset[Channel] = frozenset()
    language: str | None = None
    holiday_subdivision: str | None = None
    clock: ZoneClock = field(init=False, repr=False, compare=False)
    state: int = field(init=False, repr=False, compare=False)
    consent_spans: tuple[tuple[int, int], ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.dpd < 0:
            raise ValueError("dpd must not be negative")
        object.__setattr__(self, "clock", clock_for(self.time_zone))
        object.__setattr__(self, "state", int(self._state()))
        spans = None if self.consented_hours is None else self.consented_hours.minute_spans()
        object.__setattr__(self, "consent_spans", spans)

    def _state(self) -> CustomerState:
        state = CustomerState.NONE
        for flag, is_set in (
            (CustomerState.DECEASED, self.deceased),
            (CustomerState.BANKRUPTCY, self.bankruptcy),
            (CustomerState.BREATHING_SPACE, self.breathing_space is not None),
            (CustomerState.CEASE_CONTACT, self.cease_contact),
            (CustomerState.DISPUTE, self.dispute),
            (CustomerState.CARE_HOLD, self.care_hold),
            (CustomerState.VULNERABLE, self.vulnerable),
            (CustomerState.OPTED_OUT, bool(self.opted_out_channels)),
        ):
            if is_set:
                state |= flag
        return state


@dataclass(frozen=True, slots=True)
class ContactRequest:
    """A proposed contact: which channel, when (timezone-aware), why, to whom, by whom.

    `number_id` names the dialled number (an opaque id, never the number itself); it is
    what per-number caps count. Visits need an `agent`; calls may name one.
    """

    channel: Channel
    at: datetime
    purpose: Purpose = Purpose.COLLECTION
    recipient: Recipient = Recipient.DEBTOR
    number_id: str | None = None
    agent: Agent | None = None
    ts: int = field(init=False, repr=False, compare=False)
    # True when anything beyond hours, days and caps must be looked at.
    needs_eligibility: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            # A naive time would have to be guessed into a zone; the policy never guesses.
            raise ValueError("ContactRequest.at must be timezone-aware")
        object.__setattr__(self, "ts", int(self.at.timestamp() // 1))
        special = (
            self.channel is Channel.VISIT or self.recipient is not Recipient.DEBTOR or self.agent is not None
        )
        object.__setattr__(self, "needs_eligibility", special)


class Decision(NamedTuple):
    """The answer: allowed or not, the rule that decided, and when contact may happen.

    `next_allowed` is the proposed time itself when allowed, the earliest allowed time
    (UTC) otherwise, and None when waiting alone will not make it allowed (deceased,
    cease-contact, an uncertified agent, ...). `reason` never contains personal data.
    A NamedTuple rather than a dataclass: built on every decision, it is 4x cheaper.
    """

    allowed: bool
    rule_id: str
    reason: str
    pack_id: str
    pack_version: str
    next_allowed: datetime | None

    def log_fields(self) -> dict[str, str | bool]:
        """Fields for a structured log line or an audit row (no personal data)."""
        return {
            "allowed": self.allowed,
            "rule_id": self.rule_id,
            "pack_id": self.pack_id,
            "pack_version": self.pack_version,
            "reason": self.reason,
        }
