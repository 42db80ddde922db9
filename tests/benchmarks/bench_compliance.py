"""Compliance decisions per second on one core, over a realistic mixed workload.

Run: .venv/bin/python tests/benchmarks/bench_compliance.py [--decisions N] [--seed S]

The workload: customers of all eight packs in their countries' time zones (US coast to
coast, Indonesia's three zones), a few percent with suppression flags, consent or
vulnerability; histories of up to 20 contacts over the past 8 days (what a caller keeps);
calls, texts and visits with agents, a few third-party contacts; proposed times spread over
two months of 2026 (DST changes, Easter, St Patrick's Day, Eid, Nyepi) at any hour, since
schedulers ask about night times too. Caches (zone offsets, holidays) are warm, as in a
running service. Prints figures, then one JSON line: {"decisions_per_s": n, "rule_packs": k}.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# Runs as a script from any directory, whether or not the project is installed in the venv.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.compliance import (
    PACK_IDS,
    Agent,
    BreathingSpace,
    Channel,
    ContactHistory,
    ContactRecord,
    ContactRequest,
    Customer,
    LocalWindow,
    Purpose,
    Recipient,
    RulePack,
    decide,
    load_pack,
)

# Share of accounts per pack (a China-first lender with international books) and their zones.
PACK_MIX = {"cn": 40, "in": 12, "id": 12, "ph": 10, "vn": 8, "us": 8, "uk": 6, "ie": 4}
PACK_ZONES = {
    "cn": ["Asia/Shanghai", "Asia/Urumqi"],
    "us": [
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Los_Angeles",
        "America/Anchorage",
        "Pacific/Honolulu",
    ],
    "uk": ["Europe/London"],
    "ie": ["Europe/Dublin"],
    "in": ["Asia/Kolkata"],
    "id": ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"],
    "ph": ["Asia/Manila"],
    "vn": ["Asia/Ho_Chi_Minh"],
}
LANGUAGES = {
    "cn": "zh-CN",
    "us": "en",
    "uk": "en",
    "ie": "en",
    "in": "hi",
    "id": "id",
    "ph": "tl",
    "vn": "vi",
}
PERIOD_START = datetime(2026, 3, 1, tzinfo=UTC)
PERIOD_SECONDS = 61 * 86_400  # March and April 2026


@dataclass(frozen=True, slots=True)
class Case:
    pack: RulePack
    customer: Customer
    request: ContactRequest
    history: ContactHistory


def chance(rng: random.Random, percent: float) -> bool:
    return rng.random() * 100 < percent


def make_customer(rng: random.Random, pack_id: str, zone: str, today: date) -> Customer:
    breathing = None
    if pack_id == "uk" and chance(rng, 2):
        breathing = BreathingSpace(start=today - timedelta(days=rng.randrange(90)))
    care_hold = chance(rng, 1)
    return Customer(
        time_zone=zone,
        dpd=rng.choice([rng.randrange(1, 30), rng.randrange(30, 90), rng.randrange(90, 180)]),
        cease_contact=chance(rng, 1),
        dispute=chance(rng, 2),
        deceased=chance(rng, 0.3),
        bankruptcy=chance(rng, 0.5),
        care_hold=care_hold,
        care_hold_until=today + timedelta(days=rng.randrange(1, 30))
        if care_hold and chance(rng, 50)
        else None,
        vulnerable=chance(rng, 4),
        breathing_space=breathing,
        own_number_invalid=chance(rng, 3),
        consented_hours=LocalWindow(
            datetime.min.time().replace(hour=21), datetime.min.time().replace(hour=23)
        )
        if chance(rng, 3)
        else None,
        opted_out_channels=frozenset({Channel.CALL}) if chance(rng, 1) else frozenset(),
        language=LANGUAGES[pack_id],
    )


def make_history(rng: random.Random, zone: str, now: datetime) -> ContactHistory:
    records = []
    for _ in range(rng.choice([0, 0, 2, 5, 8, 12, 20])):
        at = now - timedelta(seconds=rng.randrange(8 * 86_400))
        channel = rng.choices([Channel.CALL, Channel.SMS, Channel.VISIT], [6, 3, 1])[0]
        records.append(
            ContactRecord(channel, at, connected=chance(rng, 30), number_id=rng.choice(["m", "m", "h"]))
        )
    return ContactHistory(zone, records)


def make_agent(rng: random.Random, pack_id: str, today: date) -> Agent:
    return Agent(
        hardship_trained=chance(rng, 35),
        certification_valid_until=today + timedelta(days=rng.randrange(-10, 700)),
        languages=frozenset({LANGUAGES[pack_id], "en"}),
    )


def make_case(rng: random.Random, packs: dict[str, RulePack]) -> Case:
    pack_id = rng.choices(list(PACK_MIX), list(PACK_MIX.values()))[0]
    zone = rng.choice(PACK_ZONES[pack_id])
    at = PERIOD_START + timedelta(seconds=rng.randrange(PERIOD_SECONDS))
    today = at.date()
    channel = rng.choices([Channel.CALL, Channel.SMS, Channel.VISIT], [50, 35, 15])[0]
    third_party = chance(rng, 2)
    agent = make_agent(rng, pack_id, today) if channel is Channel.VISIT or chance(rng, 20) else None
    request = ContactRequest(
        channel=channel,
        at=at,
        purpose=Purpose.LOCATE_DEBTOR if third_party else rng.choices(list(Purpose), [90, 3, 2, 3, 2])[0],
        recipient=Recipient.THIRD_PARTY if third_party else Recipient.DEBTOR,
        number_id=rng.choice(["m", "h", "r"]) if channel is not Channel.VISIT else None,
        agent=agent,
    )
    customer = make_customer(rng, pack_id, zone, today)
    return Case(packs[pack_id], customer, request, make_history(rng, zone, at))


def run_once(cases: list[Case]) -> float:
    """Decisions per second over one pass of the workload."""
    started = time.perf_counter()
    for case in cases:
        decide(case.pack, case.customer, case.request, case.history)
    return len(cases) / (time.perf_counter() - started)


def run_once_building_requests(cases: list[Case]) -> float:
    """Decisions per second when each decision also builds its ContactRequest (as callers do)."""
    started = time.perf_counter()
    for case in cases:
        asked = case.request
        request = ContactRequest(
            asked.channel, asked.at, asked.purpose, asked.recipient, asked.number_id, asked.agent
        )
        decide(case.pack, case.customer, request, case.history)
    return len(cases) / (time.perf_counter() - started)


def latencies_us(cases: list[Case]) -> list[float]:
    clock = time.perf_counter_ns
    samples = []
    for case in cases:
        started = clock()
        decide(case.pack, case.customer, case.request, case.history)
        samples.append((clock() - started) / 1000)
    return samples


def describe(cases: list[Case]) -> tuple[Counter[str], Counter[str]]:
    outcomes: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    for case in cases:
        decision = decide(case.pack, case.customer, case.request, case.history)
        outcomes[
            "allowed"
            if decision.allowed
            else "refused, next time given"
            if decision.next_allowed
            else "refused, none"
        ] += 1
        rules[decision.rule_id.split(".", 1)[1]] += 1
    return outcomes, rules


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=50_000, help="distinct cases in the workload")
    parser.add_argument("--passes", type=int, default=7, help="timed passes (the median is reported)")
    parser.add_argument("--seed", type=int, default=20260301)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    rng = random.Random(args.seed)
    packs = {pack_id: load_pack(pack_id) for pack_id in PACK_IDS}
    build_started = time.perf_counter()
    cases = [make_case(rng, packs) for _ in range(args.decisions)]
    build_s = time.perf_counter() - build_started

    run_once(cases)  # warm the zone-offset and holiday caches, as in a running service
    gc.collect()
    gc.freeze()
    rates = [run_once(cases) for _ in range(args.passes)]
    rate = statistics.median(rates)
    with_requests = statistics.median(run_once_building_requests(cases) for _ in range(3))
    samples = sorted(latencies_us(cases))
    outcomes, rules = describe(cases)

    per_pack = {}
    for pack_id in PACK_IDS:
        subset = [case for case in cases if case.pack.id == pack_id]
        per_pack[pack_id] = statistics.median(run_once(subset) for _ in range(3))

    print(f"workload: {len(cases):,} cases over {len(PACK_IDS)} packs, {sum(len(z) for z in PACK_ZONES.values())} zones "
          f"(built in {build_s:.2f} s); one core; {args.passes} passes")  # fmt: skip
    print(f"decisions/s: median {rate:,.0f} (min {min(rates):,.0f}, max {max(rates):,.0f})")
    print(f"decisions/s including building each ContactRequest: median {with_requests:,.0f}")
    print(
        f"latency per decision: p50 {samples[len(samples) // 2]:.1f} µs, "
        f"p99 {samples[int(len(samples) * 0.99)]:.1f} µs, max {samples[-1]:.0f} µs"
    )
    total = sum(outcomes.values())
    print("outcomes: " + ", ".join(f"{name} {count / total:.1%}" for name, count in outcomes.most_common()))
    print(
        "deciding rules: " + ", ".join(f"{name} {count / total:.1%}" for name, count in rules.most_common(12))
    )
    print(
        "decisions/s per pack: " + ", ".join(f"{pack_id} {value:,.0f}" for pack_id, value in per_pack.items())
    )
    print(json.dumps({"decisions_per_s": round(rate), "rule_packs": len(PACK_IDS)}))


if __name__ == "__main__":
    main()
