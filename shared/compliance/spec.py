"""The schema of a rule pack file (validated with pydantic when a pack is loaded).

A pack is data: every rule names its sources (regulation and article) by id, and
`extra="forbid"` everywhere makes a misspelt key in a pack or a lender's override fail
loudly instead of silently keeping the default.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.compliance.model import Channel, Purpose

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
RuleKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


def parse_span(span: str) -> tuple[int, int]:
    """'08:00-22:00' -> (480, 1320) minutes of the local day, end exclusive."""
    match = _SPAN.match(span)
    if match is None:
        raise ValueError(f"hours must look like 08:00-22:00, got {span!r}")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if not start < end <= 1440:
        raise ValueError(f"hours {span!r}: the start must be before the end (use 24:00 for midnight)")
    return start, end


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(Strict):
    id: RuleKey
    regulation: str = Field(min_length=3)
    article: str = Field(min_length=1)
    note: str | None = None


class RuleSpec(Strict):
    sources: list[RuleKey] = Field(min_length=1)
    note: str | None = None


class QuietHoursSpec(RuleSpec):
    """Allowed local hours per channel; a channel without hours is not permitted at all."""

    consent_extends_hours: bool
    visit: list[str] = []
    call: list[str] = []
    sms: list[str] = []

    @field_validator("visit", "call", "sms")
    @classmethod
    def _spans_parse(cls, spans: list[str]) -> list[str]:
        for span in spans:
            parse_span(span)
        return spans

    def spans(self, channel: Channel) -> list[str]:
        return {Channel.VISIT: self.visit, Channel.CALL: self.call, Channel.SMS: self.sms}[channel]


class DpdHoursSpec(RuleSpec):
    """Hours added to the normal ones once an account is more than `after_dpd` days past due."""

    after_dpd: int = Field(ge=0)
    hours: list[str]
    channels: list[Channel]

    @field_validator("hours")
    @classmethod
    def _spans_parse(cls, spans: list[str]) -> list[str]:
        for span in spans:
            parse_span(span)
        return spans


class RestDaySpec(RuleSpec):
    weekdays: list[Weekday]
    channels: list[Channel]


class PublicHolidaySpec(RuleSpec):
    calendar: str = Field(pattern=r"^[A-Z]{2}$", description="ISO country code for the holidays package")
    channels: list[Channel]


class CapSpec(RuleSpec):
    """At most `limit` contacts of the counted kind in `window_days` local days."""

    description: str
    limit: int = Field(ge=0)
    counts: Literal["attempts", "connected"]
    channels: list[Channel] = Field(min_length=1, description="the contacts that are counted")
    applies_to: list[Channel] = Field(min_length=1, description="the contacts that are refused at the cap")
    per: Literal["debtor", "number"]
    window_days: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _numbers_count_attempts(self) -> CapSpec:
        if self.per == "number" and self.counts != "attempts":
            raise ValueError("a per-number cap counts attempts (a number does not know who answered)")
        return self


class PauseSpec(RuleSpec):
    """No contact on the `days` local days starting with the day of a conversation."""

    description: str
    days: int = Field(ge=1, le=31)
    applies_to: list[Channel] = Field(min_length=1)


class ExceptionSpec(Strict):
    purpose: Purpose
    channels: list[Channel] = Field(min_length=1)
    note: str


class SuppressionSpec(RuleSpec):
    exceptions: list[ExceptionSpec] = []


class BreathingSpaceSpec(SuppressionSpec):
    days: int = Field(ge=1)
    mental_health_days_after_treatment: int = Field(ge=0)


class SuppressionsSpec(Strict):
    deceased: SuppressionSpec
    bankruptcy: SuppressionSpec
    breathing_space: BreathingSpaceSpec
    cease_contact: SuppressionSpec
    dispute: SuppressionSpec
    care_hold: SuppressionSpec


class VulnerableSpec(RuleSpec):
    visit: Literal["refuse", "hardship_trained_agent"]
    call: Literal["hardship_trained_agent", "any_agent"]


class ThirdPartySpec(RuleSpec):
    """Whether, and once the debtor is how unreachable, a third party may be contacted."""

    allowed: bool
    failed_attempts: int = Field(ge=1, description="consecutive failed attempts to the debtor")
    counted_channels: list[Channel] = Field(min_length=1)
    invalid_number_suffices: bool
    purposes: list[Purpose] = Field(min_length=1)


class AgentsSpec(RuleSpec):
    certification_required: bool
    require_customer_language: bool


class RecordsSpec(RuleSpec):
    requires_visit_recording: bool
    retention_years: int = Field(ge=1)


_FIXED_RULES = {
    "allowed", "quiet_hours", "dpd_hours", "rest_day", "public_holiday", "channel_opt_out",
    "channel_not_permitted", "third_party", "third_party_purpose", "third_party_unreachable",
    "agent_required", "agent_certification", "agent_language", "vulnerable_visit", "vulnerable_agent",
    "visit_recording", *(kind for kind in SuppressionsSpec.model_fields),
}  # fmt: skip


class PackSpec(Strict):
    id: RuleKey
    version: str = Field(min_length=1, max_length=64)
    title: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    effective_from: date
    sources: list[SourceSpec] = Field(min_length=1)
    quiet_hours: QuietHoursSpec
    dpd_hours: DpdHoursSpec | None = None
    rest_day: RestDaySpec | None = None
    public_holiday: PublicHolidaySpec | None = None
    caps: dict[RuleKey, CapSpec] = {}
    pauses: dict[RuleKey, PauseSpec] = {}
    suppression: SuppressionsSpec
    vulnerable: VulnerableSpec
    third_party: ThirdPartySpec
    agents: AgentsSpec
    records: RecordsSpec

    @model_validator(mode="after")
    def _rules_are_sourced_and_unique(self) -> PackSpec:
        known = {source.id for source in self.sources}
        if len(known) != len(self.sources):
            raise ValueError("source ids must be unique")
        for rule_key, rule in self.rules().items():
            missing = sorted(set(rule.sources) - known)
            if missing:
                raise ValueError(f"rule {rule_key!r} cites unknown sources {missing}")
        clashes = sorted((set(self.caps) | set(self.pauses)) & _FIXED_RULES)
        if clashes or set(self.caps) & set(self.pauses):
            raise ValueError(f"cap and pause names must be unique and not reuse rule names: {clashes}")
        return self

    def rules(self) -> dict[str, RuleSpec]:
        """Every rule of the pack by its key (the rule id without the pack prefix)."""
        rules: dict[str, RuleSpec | None] = {
            "quiet_hours": self.quiet_hours,
            "dpd_hours": self.dpd_hours,
            "rest_day": self.rest_day,
            "public_holiday": self.public_holiday,
            **{kind: getattr(self.suppression, kind) for kind in SuppressionsSpec.model_fields},
            "vulnerable": self.vulnerable,
            "third_party": self.third_party,
            "agents": self.agents,
            "records": self.records,
            **self.caps,
            **self.pauses,
        }
        return {key: rule for key, rule in rules.items() if rule is not None}
