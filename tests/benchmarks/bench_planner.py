"""make bench-planner: the planner's routing on the Solomon VRPTW instances, and a city day.

Solomon: every instance through `services.planner.solomon` (the planner's own routing code),
routes checked by tests/routecheck.py, gap to the shortest known distance. City day: 10,000
open cases and 200 agents in Shenzhen through `plan_day` on the real PostgreSQL (compliance
windows, routing, visits and events written), checked by the independent plan checker.
Env: SOLOMON=C101,R101 for a subset; CITY_CASES / CITY_AGENTS to resize; TIME_LIMIT (s).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from deploy import devstack  # noqa: E402
from services.planner import handlers, repository, solomon  # noqa: E402
from services.planner.main import SERVICE_DIR  # noqa: E402
from services.planner.models import AgentIn  # noqa: E402
from services.planner.planning import PlanOptions, plan_day  # noqa: E402
from shared.db import create_pool, migrate  # noqa: E402
from shared.events import Envelope  # noqa: E402
from shared.events import payloads as p  # noqa: E402
from tests.integration.planner.checker import check_plan  # noqa: E402
from tests.routecheck import check_solomon  # noqa: E402

BENCH = Path(os.environ.get("SOLOMON_DIR", ROOT.parent / "shared" / "benchmarks" / "solomon"))
ROUTES_DIR = ROOT / "bench-results" / "solomon-routes"
PLAN_DATE = date(2026, 12, 2)


def run_solomon(time_limit: float) -> dict[str, float]:
    best = {row["instance"]: row for row in csv.DictReader((BENCH / "bks.csv").open())}
    wanted = os.environ.get("SOLOMON")
    names = wanted.split(",") if wanted else sorted(best)
    ROUTES_DIR.mkdir(parents=True, exist_ok=True)
    gaps, times, invalid = [], [], 0
    print(f"{'instance':<8} {'distance':>10} {'best':>10} {'gap %':>7} {'veh':>4} {'time s':>7}  valid")
    for name in names:
        instance = solomon.parse(BENCH / "instances" / f"{name}.txt")
        routes, seconds = solomon.solve_instance(instance, time_limit)
        (ROUTES_DIR / f"{name}.json").write_text(json.dumps(routes))
        problems = check_solomon(instance, routes)
        invalid += bool(problems)
        distance = solomon.distance(instance, routes)
        gap = (distance / float(best[name]["min_distance"]) - 1) * 100
        gaps.append(gap)
        times.append(seconds)
        print(f"{name:<8} {distance:>10.2f} {float(best[name]['min_distance']):>10.2f} {gap:>7.2f} "
              f"{len(routes):>4} {seconds:>7.2f}  {'yes' if not problems else problems[:2]}", flush=True)  # fmt: skip
    return {"instances": len(names), "avg_gap": sum(gaps) / len(gaps), "max_gap": max(gaps),
            "invalid": invalid, "max_time": max(times)}  # fmt: skip


async def run_city(admin: str, cases: int, agents: int, time_limit: float) -> dict[str, float]:
    name = f"fc_bench_planner_{os.getpid()}"
    url = await devstack.create_database(admin, name, drop_first=True)
    pool = await create_pool(url, "planner", 1, 4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, "planner", SERVICE_DIR)
        await _seed_city(pool, cases, agents)
        options = PlanOptions(time_limit_s=time_limit)
        started = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            outcome = await plan_day(conn, PLAN_DATE, "shenzhen", options)
        seconds = time.perf_counter() - started
        async with pool.acquire() as conn:
            visits = await conn.fetch("SELECT * FROM visits WHERE status = 'planned'")
            agent_rows = {r["agent_id"]: r for r in await conn.fetch("SELECT * FROM agents")}
            case_rows = {r["account_id"]: r for r in await conn.fetch("SELECT * FROM cases")}
            # Every case that wanted a visit and has none: the solver's rejects and those ranked out.
            waiting = await conn.fetchval(
                "SELECT count(*) FROM cases c WHERE next_action = 'field_visit' AND NOT EXISTS"
                " (SELECT 1 FROM visits v WHERE v.account_id = c.account_id AND v.status = 'planned')"
            )
        problems = check_plan(visits, agent_rows, case_rows, PLAN_DATE, speed_kmh=options.travel_speed_kmh,
                              road_factor=options.road_factor, break_minutes=options.break_minutes)  # fmt: skip
        print(f"city day: {cases} cases, {agents} agents -> {outcome.assigned} visits planned in {seconds:.1f} s, "
              f"{waiting} unplanned ({len(outcome.unplanned)} rejected by the solver, the rest ranked out), "
              f"checker problems: {len(problems)} {problems[:3]}")  # fmt: skip
        return {"seconds": seconds, "unplanned": waiting, "invalid": len(problems)}
    finally:
        await pool.close()
        await devstack.drop_database(admin, name)


async def _seed_city(pool, cases: int, agents: int) -> None:
    rng = random.Random(42)
    centre = (22.60, 114.05)
    async with pool.acquire() as conn, conn.transaction():
        for i in range(agents):
            await repository.upsert_agent(conn, AgentIn(
                agent_id=f"AG-{i:03d}", display_name=f"Agent {i}", region="shenzhen",
                home_lat=centre[0] + rng.uniform(-0.15, 0.15), home_lon=centre[1] + rng.uniform(-0.3, 0.3),
                daily_capacity=12, languages=["zh-CN", "en"] if i % 10 == 0 else ["zh-CN"],
                hardship_trained=i % 4 == 0, certified_until=PLAN_DATE + timedelta(days=90),
            ))  # fmt: skip
        for i in range(cases):
            event = Envelope(data=p.DelinquencyOpened(
                account_id=f"CITY-{i:05d}", customer_id=f"C-{i:05d}", product="cash_loan", currency="CNY",
                as_of=PLAN_DATE - timedelta(days=1), principal=Decimal(20000), outstanding=Decimal(9000),
                overdue_amount=Decimal(rng.randrange(2000, 9000)), dpd=rng.choice([65, 90, 120, 200]),
                dpd_bucket="61-90", priority_score=round(rng.uniform(3, 9), 2),
                contact=p.ContactDetails(time_zone="Asia/Shanghai", language="en" if i % 50 == 0 else "zh-CN"),
                address=p.Address(line1="x", city="Shenzhen", country="CN", location=p.GeoPoint(
                    lat=centre[0] + rng.uniform(-0.18, 0.18), lon=centre[1] + rng.uniform(-0.35, 0.35))),
                flags=p.CustomerFlags(vulnerable=i % 40 == 0),
            ), source="/bench")  # fmt: skip
            await handlers.on_delinquency_opened(conn, event)
        if cases:
            # Vulnerable customers past 30 days get care first; the bench wants them at the door too.
            await conn.execute("UPDATE cases SET next_action = 'field_visit'")


def main() -> int:
    time_limit = float(os.environ.get("TIME_LIMIT", "10"))
    sol = run_solomon(time_limit)
    city_cases = int(os.environ.get("CITY_CASES", "10000"))
    city_agents = int(os.environ.get("CITY_AGENTS", "200"))
    city = asyncio.run(
        run_city(
            devstack.admin_dsn(), city_cases, city_agents, float(os.environ.get("CITY_TIME_LIMIT", "45"))
        )
    )
    print(f"solomon: {sol['instances']} instances, avg gap {sol['avg_gap']:.2f} %, max gap {sol['max_gap']:.2f} %, "
          f"invalid {sol['invalid']}, max time {sol['max_time']:.2f} s")  # fmt: skip
    print(json.dumps({
        "solomon_instances": sol["instances"], "solomon_avg_gap_pct": round(sol["avg_gap"], 3),
        "solomon_max_gap_pct": round(sol["max_gap"], 3), "solomon_invalid": sol["invalid"],
        "solomon_max_time_s": round(sol["max_time"], 2), "city_cases": city_cases, "city_agents": city_agents,
        "city_plan_s": round(city["seconds"], 1), "city_unplanned": city["unplanned"],
        "routes_dir": str(ROUTES_DIR.relative_to(ROOT)),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
