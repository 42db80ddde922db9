"""DPD buckets and the priority score, from one versioned config (segmentation.toml)."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

CONFIG_PATH = Path(__file__).parent / "segmentation.toml"


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    min_dpd: int
    max_dpd: int | None
    weight: float


@dataclass(frozen=True, slots=True)
class Segmentation:
    version: str
    buckets: tuple[Bucket, ...]
    amount_weight: float
    vulnerable_penalty: float

    def bucket(self, dpd: int) -> str:
        for b in self.buckets:
            if dpd >= b.min_dpd and (b.max_dpd is None or dpd <= b.max_dpd):
                return b.name
        return "current"

    def priority(self, dpd: int, overdue: Decimal, vulnerable: bool) -> float:
        """Higher means visit sooner: later bucket, larger overdue amount; care before pressure."""
        weight = next((b.weight for b in self.buckets if b.name == self.bucket(dpd)), 0.0)
        score = weight + self.amount_weight * math.log10(1 + float(overdue))
        if vulnerable:
            score -= self.vulnerable_penalty
        return round(score, 3)


def load_segmentation(path: Path = CONFIG_PATH) -> Segmentation:
    raw = tomllib.loads(path.read_text())
    buckets = tuple(
        Bucket(b["name"], b["min_dpd"], b.get("max_dpd"), float(b["weight"])) for b in raw["buckets"]
    )
    score = raw["score"]
    return Segmentation(
        raw["version"], buckets, float(score["amount_weight"]), float(score["vulnerable_penalty"])
    )
