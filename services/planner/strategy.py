"""The contact strategy: a case's facts in, the next action and the rule that fired out."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

Action = Literal["sms_reminder", "call", "field_visit", "care_referral", "hold"]
STRATEGY_PATH = Path(__file__).parent / "strategy.toml"
_ACTIONS = {"sms_reminder", "call", "field_visit", "care_referral", "hold"}
_CONDITIONS = {
    "any_flag", "min_dpd", "max_dpd", "min_overdue", "open_promise", "revisit_requested",
    "min_broken_promises", "min_failed_calls", "min_sms_7d",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CaseFacts:
    dpd: int
    overdue_amount: Decimal
    flags: frozenset[str] = frozenset()
    open_promise: bool = False
    revisit_requested: bool = False
    broken_promises: int = 0
    failed_calls_in_a_row: int = 0
    sms_last_7d: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    rule: str
    why: str
    strategy_version: str


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    why: str
    action: Action
    conditions: dict[str, Any] = field(default_factory=dict)

    def matches(self, case: CaseFacts) -> bool:
        c = self.conditions
        checks = (
            ("any_flag", lambda v: bool(case.flags & set(v))),
            ("min_dpd", lambda v: case.dpd >= v),
            ("max_dpd", lambda v: case.dpd <= v),
            ("min_overdue", lambda v: case.overdue_amount >= Decimal(str(v))),
            ("open_promise", lambda v: case.open_promise == v),
            ("revisit_requested", lambda v: case.revisit_requested == v),
            ("min_broken_promises", lambda v: case.broken_promises >= v),
            ("min_failed_calls", lambda v: case.failed_calls_in_a_row >= v),
            ("min_sms_7d", lambda v: case.sms_last_7d >= v),
        )
        return all(check(c[name]) for name, check in checks if name in c)


@dataclass(frozen=True, slots=True)
class Strategy:
    version: str
    rules: tuple[Rule, ...]

    def decide(self, case: CaseFacts) -> Decision:
        for rule in self.rules:
            if rule.matches(case):
                return Decision(rule.action, rule.id, rule.why, self.version)
        return Decision("hold", "default.hold", "no rule matched", self.version)


def load_strategy(path: Path = STRATEGY_PATH) -> Strategy:
    raw = tomllib.loads(path.read_text())
    rules = []
    for entry in raw["rules"]:
        conditions = {k: v for k, v in entry.items() if k not in ("id", "why", "action")}
        unknown = set(conditions) - _CONDITIONS
        if unknown or entry["action"] not in _ACTIONS:
            raise ValueError(f"strategy rule {entry['id']}: unknown {sorted(unknown) or entry['action']}")
        rules.append(Rule(entry["id"], entry["why"], entry["action"], conditions))
    return Strategy(raw["version"], tuple(rules))
