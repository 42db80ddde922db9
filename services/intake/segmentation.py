"""DPD buckets and the explainable priority score, from one versioned config (segmentation.toml).

The score is a sum of named contributions (`Factor`): each says which input moved it and by
how much, and the factors add up to the score exactly. Events and the API carry both, with
the config's version, so a ranking can always be explained after the fact.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

CONFIG_PATH = Path(__file__).parent / "segmentation.toml"
CURRENT = "current"
MAX_DPD = 36500


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    min_dpd: int
    max_dpd: int | None
    weight: float


class Factor(NamedTuple):
    """One contribution to the score: the input, its value in the snapshot, the points it added."""

    factor: str
    input: str
    points: float


class Priority(NamedTuple):
    bucket: str
    score: float
    factors: tuple[Factor, ...]


@dataclass(frozen=True, slots=True)
class ScoreRules:
    amount_weight: float
    arrears_weight: float
    arrears_cap: float
    recent_payment_days: int
    recent_payment_points: float
    vulnerable_penalty: float


@dataclass(frozen=True)
class Segmentation:
    version: str
    buckets: tuple[Bucket, ...]
    rules: ScoreRules

    def __post_init__(self) -> None:
        # dpd is bounded by the input schema: a table makes the bucket lookup O(1) on the bulk path.
        table = tuple(self._find_bucket(dpd) for dpd in range(MAX_DPD + 1))
        object.__setattr__(self, "_by_dpd", table)
        object.__setattr__(self, "_weights", {b.name: round(b.weight, 3) for b in self.buckets})

    def _find_bucket(self, dpd: int) -> str:
        for b in self.buckets:
            if dpd >= b.min_dpd and (b.max_dpd is None or dpd <= b.max_dpd):
                return b.name
        return CURRENT

    def bucket(self, dpd: int) -> str:
        by_dpd: tuple[str, ...] = self._by_dpd  # type: ignore[attr-defined]
        return by_dpd[dpd] if 0 <= dpd <= MAX_DPD else self._find_bucket(dpd)

    def explain(
        self,
        dpd: int,
        overdue: Decimal,
        vulnerable: bool,
        installment: Decimal | None = None,
        days_since_payment: int | None = None,
    ) -> Priority:
        """Higher means visit sooner: later bucket, larger and deeper arrears; care before pressure."""
        bucket, score, factors = self.contributions(dpd, overdue, vulnerable, installment, days_since_payment)
        return Priority(bucket, score, tuple(Factor(*f) for f in factors))

    def contributions(
        self,
        dpd: int,
        overdue: Decimal,
        vulnerable: bool,
        installment: Decimal | None,
        days_since_payment: int | None,
    ) -> tuple[str, float, list[tuple[str, str, float]]]:
        """`explain` as plain tuples: the bulk file path calls it once per row."""
        rules = self.rules
        bucket = self.bucket(dpd)
        weights: dict[str, float] = self._weights  # type: ignore[attr-defined]
        amount = float(overdue)
        weight = weights.get(bucket, 0.0)
        amount_points = round(rules.amount_weight * math.log10(1 + amount), 3)
        factors = [("dpd_bucket", bucket, weight), ("overdue_amount", f"{overdue:.2f}", amount_points)]
        score = weight + amount_points
        if installment is not None and installment > 0 and amount > 0:
            depth = amount / float(installment)
            points = round(rules.arrears_weight * min(depth, rules.arrears_cap), 3)
            factors.append(("overdue_installments", f"{depth:.1f}", points))
            score += points
        if days_since_payment is not None and 0 <= days_since_payment <= rules.recent_payment_days:
            factors.append(("recent_payment", f"{days_since_payment}d", rules.recent_payment_points))
            score += rules.recent_payment_points
        if vulnerable:
            factors.append(("vulnerable", "true", -rules.vulnerable_penalty))
            score -= rules.vulnerable_penalty
        return bucket, round(score, 3), factors

    def priority(self, dpd: int, overdue: Decimal, vulnerable: bool) -> float:
        return self.explain(dpd, overdue, vulnerable).score


def days_between(later: date, earlier: date | None) -> int | None:
    return None if earlier is None else (later - earlier).days


def load_segmentation(path: Path = CONFIG_PATH) -> Segmentation:
    raw = tomllib.loads(path.read_text())
    buckets = tuple(
        Bucket(b["name"], int(b["min_dpd"]), b.get("max_dpd"), float(b["weight"])) for b in raw["buckets"]
    )
    names = [b.name for b in buckets]
    if len(set(names)) != len(names) or CURRENT in names:
        raise ValueError(f"{path}: bucket names must be unique and not {CURRENT!r}")
    score = raw["score"]
    # Points are reported to three decimals; constant ones are rounded once, here.
    rules = ScoreRules(
        amount_weight=float(score["amount_weight"]),
        arrears_weight=float(score.get("arrears_weight", 0.0)),
        arrears_cap=float(score.get("arrears_cap", 0.0)),
        recent_payment_days=int(score.get("recent_payment_days", -1)),
        recent_payment_points=round(float(score.get("recent_payment_points", 0.0)), 3),
        vulnerable_penalty=round(float(score["vulnerable_penalty"]), 3),
    )
    return Segmentation(str(raw["version"]), buckets, rules)
