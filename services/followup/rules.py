"""Follow-up rules (rules.toml): validated once, then pure functions the handlers ask.

The file is data a collections operations team can change: every key is validated
(`extra="forbid"`, a misspelt key fails at start-up instead of silently keeping a default)
and the version is stamped on what the rules decide.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RULES_PATH = Path(__file__).parent / "rules.toml"
Program = Literal["deferral", "restructuring", "counselling"]
HardshipCategory = Literal["job_loss", "illness", "bereavement", "income_drop", "disaster", "other"]
NextStep = Literal["call", "revisit", "none"]
Fact = Literal["payment", "payment_cleared", "promise", "visit_met", "call_connected", "sms"]
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactHours(Strict):
    """Preferred local hours per channel, as (start, end) minutes of the day.

    `law_hours_only` lists actions that only the compliance pack's hours bind.
    """

    sms: str
    call: str
    law_hours_only: list[str] = Field(default_factory=list)

    @field_validator("sms", "call")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_hours(value)
        return value

    def minutes(self, channel: Literal["sms", "call"], action: str) -> tuple[int, int]:
        if action in self.law_hours_only:
            return 0, 1440
        return parse_hours(self.sms if channel == "sms" else self.call)


class OnBroken(Strict):
    call_delay_hours: float = Field(ge=0)
    call_within_days: int = Field(ge=1)
    revisit_after_breaks: int = Field(ge=1)
    count_breaks_over_days: int = Field(ge=1)
    revisit_not_before_days: int = Field(ge=0)


class PromiseRules(Strict):
    confirm_by_sms: bool
    confirmation_stale_after_hours: float = Field(gt=0)
    reminder_days_before: int = Field(ge=1)
    grace_days: int = Field(ge=0)
    on_broken: OnBroken


class OutcomeRule(Strict):
    action: NextStep
    delay_hours: float = Field(default=0, ge=0)
    call_within_days: int = Field(default=3, ge=1)
    escalate_after: int | None = Field(default=None, ge=1)
    escalate_to: NextStep | None = None
    revisit_not_before_days: int = Field(default=1, ge=0)
    # A message left for the customer right after the visit, which someone else may read: sent
    # as to a third party (templates.for_recipient), so it carries no debt details.
    message: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    message_within_hours: float = Field(default=24, gt=0)

    @model_validator(mode="after")
    def _escalation_complete(self) -> OutcomeRule:
        if (self.escalate_after is None) != (self.escalate_to is None):
            raise ValueError("escalate_after and escalate_to go together")
        return self


class ProgramRule(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    why: str = Field(min_length=3)
    program: Program
    categories: list[HardshipCategory] | None = None
    min_dpd: int | None = Field(default=None, ge=0)
    max_dpd: int | None = Field(default=None, ge=0)

    def matches(self, category: str, dpd: int) -> bool:
        return (
            (self.categories is None or category in self.categories)
            and (self.min_dpd is None or dpd >= self.min_dpd)
            and (self.max_dpd is None or dpd <= self.max_dpd)
        )


class HardshipRules(Strict):
    notify_by_sms: bool
    care_info_without_consent: bool
    programs: list[ProgramRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _last_rule_catches_all(self) -> HardshipRules:
        last = self.programs[-1]
        if last.categories is not None or last.min_dpd is not None or last.max_dpd is not None:
            raise ValueError("the last hardship program rule must match every case (no conditions)")
        return self


class DisputeRules(Strict):
    acknowledge_by_sms: bool


class LedgerRules(Strict):
    lookback_hours: float = Field(ge=0)
    pointless: dict[str, list[Fact]]


class OptOutRules(Strict):
    keywords: list[str] = Field(min_length=1)


class Rules(Strict):
    version: str = Field(min_length=1)
    contact_hours: ContactHours
    promise: PromiseRules
    outcomes: dict[str, OutcomeRule]
    hardship: HardshipRules
    dispute: DisputeRules
    ledger: LedgerRules
    opt_out: OptOutRules

    def stamp(self, rule_id: str) -> str:
        """A rule id with the rules' version, as recorded on events: `followup.x@2026.11-1`."""
        return f"followup.{rule_id}@{self.version}"

    def program_for(self, category: str, dpd: int) -> ProgramRule:
        """The care program for a hardship case: the first rule that matches."""
        return next(rule for rule in self.hardship.programs if rule.matches(category, dpd))

    def next_step(self, outcome_kind: str, in_a_row: int) -> tuple[NextStep, OutcomeRule | None]:
        """What follows this visit outcome, given how many times in a row it happened (>= 1)."""
        rule = self.outcomes.get(outcome_kind)
        if rule is None:
            return "none", None
        if (
            rule.escalate_after is not None
            and rule.escalate_to is not None
            and in_a_row >= rule.escalate_after
        ):
            return rule.escalate_to, rule
        return rule.action, rule

    def is_opt_out(self, text: str) -> bool:
        """True when a reply is an opt-out keyword (whole message, case and punctuation ignored)."""
        return normalise_reply(text) in {normalise_reply(k) for k in self.opt_out.keywords}


def normalise_reply(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).strip().upper()
    return "".join(ch for ch in folded if not unicodedata.category(ch).startswith(("P", "Z", "C")))


@cache
def parse_hours(span: str) -> tuple[int, int]:
    """'09:00-20:00' -> (540, 1200) minutes of the local day, end exclusive."""
    match = _HOURS.match(span)
    if match is None:
        raise ValueError(f"hours must look like 09:00-20:00, got {span!r}")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if not start < end <= 1440:
        raise ValueError(f"hours {span!r}: the start must be before the end")
    return start, end


def parse_rules(text: str) -> Rules:
    return Rules.model_validate(tomllib.loads(text))


@cache
def load_rules(path: Path = RULES_PATH) -> Rules:
    return parse_rules(path.read_text(encoding="utf-8"))
