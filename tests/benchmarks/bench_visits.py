"""The agents' API under 200 concurrent simulated agents, next to a bare FastAPI + asyncpg endpoint.

Run: .venv/bin/python tests/benchmarks/bench_visits.py   (or `make bench-visits`)

Starts its own database and development broker, seeds 200 agents with 8 visits each for
today, then serves, each as one uvicorn process (uvloop + httptools, one worker) pinned to
CPU 0:
- the visits service as its API deployment runs it (`python -m services.visits`,
  RUN_CONSUMERS=false: no consumer group, no relay; the outbox is published by the workers);
- a bare FastAPI app with one asyncpg pool (same size) and one endpoint running one query
  (a visit by primary key, the TechEmpower "single query" shape), the same uvicorn settings.

The load generator is a separate process pinned to CPU 1 (a minimal HTTP/1.1 client over
keep-alive connections, one per simulated agent: httpx would saturate its core before the
servers). PostgreSQL is not pinned and shares both cores with whatever else runs. Scenarios:
- route: GET /v1/me/route/today (the full route of 8 visits; no If-None-Match, so no 304s);
- outcome: POST /v1/me/visits/{id}/outcomes, a new promise to pay with an Idempotency-Key
  (one transaction: key, visit, outcome + visit completed, outbox row, key's response);
- bare: GET /bare/{visit_id}.
Two phases:
1. capacity (requests/s): each agent sends its next request as soon as the previous answer
   arrives (closed loop), ROUNDS rounds interleaving the three scenarios. Latency there is
   queueing (200 requests always waiting for one core) and is printed, not judged;
2. latency (p50/p99): each agent sends one request every AGENT_INTERVAL_S seconds (1 s:
   200 req/s, far above a field agent's real rate) from a random phase; latency counts from
   the scheduled send time, so a server that falls behind is not excused.
Every visits request carries the agent's JWT and goes through the rate limiter, raised here
so that it never answers 429 (its cost is still paid on every request).

Logging is the same for both servers: uvicorn's access log off, and no line per request
(the visits service's per-span log lines, an access log in all but name, are turned off with
LOG_SPANS=false unless BENCH_LOG_SPANS=true; its spans and metrics are still recorded). Besides
requests/s, the capacity phase reports each server process's CPU time per request (user +
system, from /proc): it moves far less with the machine's load than requests/s do.

The JSON's *_rps are phase 1, its *_p99_ms phase 2. Prints figures, then one JSON line (the last line):
{"route_rps": a, "route_p99_ms": b, "outcome_rps": c, "outcome_p99_ms": d, "bare_rps": e, "bare_p99_ms": f}
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

AGENTS = int(os.environ.get("AGENTS", "200"))
VISITS_PER_AGENT = 8
DURATION_S = float(os.environ.get("DURATION_S", "8"))
WARMUP_S = float(os.environ.get("WARMUP_S", "2"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
ZONE = "Asia/Shanghai"
# Latency is measured with each agent sending one request per AGENT_INTERVAL_S (a field agent
# really sends one every few minutes): a closed loop measures queueing, not the service.
AGENT_INTERVAL_S = float(os.environ.get("AGENT_INTERVAL_S", "1.0"))
SERVER_CPU, LOADGEN_CPU = 0, 1
ROOT = Path(__file__).resolve().parents[2]


# --- the bare comparison app (run with --bare) --------------------------------------------------


def bare_app() -> Any:
    import contextlib

    import asyncpg
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import ORJSONResponse

    pool: Any = None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        nonlocal pool
        pool = await asyncpg.create_pool(
            os.environ["DATABASE_URL"], min_size=2, max_size=int(os.environ.get("DB_POOL_MAX", "10"))
        )
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/bare/{visit_id}", response_class=ORJSONResponse)
    async def one_visit(visit_id: uuid.UUID) -> Any:
        row = await pool.fetchrow(
            "SELECT visit_id::text, account_id, plan_date::text, sequence, status FROM visits.visits"
            " WHERE visit_id = $1",
            visit_id,
        )
        if row is None:
            raise HTTPException(404)
        return dict(row)

    return app


def serve_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(
        bare_app(),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


# --- the load generator (run with --loadgen) ----------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


def _requests(spec: dict[str, Any], agent: dict[str, Any]) -> Any:
    """An endless stream of this agent's raw requests for the scenario."""
    auth = f"Authorization: Bearer {agent['token']}\r\n"
    host = f"Host: 127.0.0.1:{spec['port']}\r\n"
    n = 0
    while True:
        visit_id = agent["visits"][n % len(agent["visits"])]
        n += 1
        if spec["scenario"] == "route":
            yield f"GET /v1/me/route/today?tz={ZONE} HTTP/1.1\r\n{host}{auth}\r\n".encode()
        elif spec["scenario"] == "bare":
            yield f"GET /bare/{visit_id} HTTP/1.1\r\n{host}\r\n".encode()
        else:
            body = json.dumps(
                {
                    "outcome_id": str(uuid.uuid4()),
                    "recorded_at": datetime.now(UTC).isoformat(),
                    "outcome": {
                        "kind": "promise_to_pay",
                        "amount": "500.00",
                        "promised_date": spec["promise_day"],
                    },
                    "notes": "Will pay after salary day.",
                    "recording_ref": f"rec-{n}",
                }
            ).encode()
            yield (
                f"POST /v1/me/visits/{visit_id}/outcomes HTTP/1.1\r\n{host}{auth}"
                f"Idempotency-Key: {uuid.uuid4()}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def _agent(
    spec: dict[str, Any], agent: dict[str, Any], start: float, end: float, out: dict[str, Any]
) -> None:
    """Closed loop (rate 0): the next request as soon as the answer arrives. Paced (rate > 0):
    one request every AGENTS/rate seconds from a random phase; latency counts from the
    scheduled send time, so a server that falls behind is not excused (coordinated omission)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", spec["port"])
    requests = _requests(spec, agent)
    period = len(spec["agents"]) / spec["rate"] if spec["rate"] else 0.0
    scheduled = time.perf_counter() + random.random() * period
    try:
        while True:
            if period:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent = scheduled if period else time.perf_counter()
            if sent >= end:
                return
            writer.write(next(requests))
            status = await _read_response(reader)
            done = time.perf_counter()
            scheduled += period
            if sent >= start:
                out["latencies"].append(done - sent)
                if status not in spec["ok"]:
                    out["errors"][str(status)] = out["errors"].get(str(status), 0) + 1
    finally:
        writer.close()


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "errors": {}}
    now = time.perf_counter()
    start, end = now + spec["warmup_s"], now + spec["warmup_s"] + spec["duration_s"]
    await asyncio.gather(*[_agent(spec, agent, start, end, out) for agent in spec["agents"]])
    return {"requests": len(out["latencies"]), "latencies": out["latencies"], "errors": out["errors"]}


def run_loadgen() -> None:
    import uvloop

    os.sched_setaffinity(0, {LOADGEN_CPU})
    spec = json.loads(sys.stdin.read())
    result = uvloop.run(_load(spec))
    Path(spec["out"]).write_text(json.dumps(result))


# --- the orchestrator ---------------------------------------------------------------------------


async def seed(database_url: str) -> dict[str, list[str]]:
    """AGENTS agents with VISITS_PER_AGENT visits each today, applied through the service's handler."""
    from services.visits import repository
    from services.visits.main import SCHEMA, SERVICE_DIR
    from shared.db import create_pool, migrate

    today = datetime.now(ZoneInfo(ZONE)).date()
    pool = await create_pool(database_url, SCHEMA, 1, 2)
    visits: dict[str, list[str]] = {}
    try:
        async with pool.acquire() as conn:
            await migrate(conn, SCHEMA, SERVICE_DIR)
            async with conn.transaction():
                for a in range(AGENTS):
                    agent_id = f"AG-{a:04d}"
                    for s in range(VISITS_PER_AGENT):
                        visit = _visit(agent_id, a, s, today)
                        await repository.save_assignment(conn, visit)
                        visits.setdefault(agent_id, []).append(str(visit.visit_id))
            await conn.execute("ANALYZE")
    finally:
        await pool.close()
    return visits


def _visit(agent_id: str, a: int, s: int, today: date) -> Any:
    from shared.events import payloads as p

    start = datetime(today.year, today.month, today.day, 9, tzinfo=ZoneInfo(ZONE)) + timedelta(minutes=50 * s)
    return p.VisitAssigned(
        account_id=f"BENCH-{a:04d}-{s}",
        visit_id=uuid.uuid4(),
        agent_id=agent_id,
        plan_date=today,
        sequence=s,
        window_start=start,
        window_end=start + timedelta(minutes=45),
        address=p.Address(
            line1=f"{100 + s} Keyuan Road",
            city="Shenzhen",
            region="Guangdong",
            postal_code="518057",
            country="CN",
            location=p.GeoPoint(lat=22.54 + a / 10_000, lon=113.94 + s / 10_000),
        ),
        time_zone=ZONE,
        language="zh-CN",
        customer_name="Customer",
        briefing=p.Briefing(
            currency="CNY",
            overdue_amount=Decimal("2500.00"),
            outstanding=Decimal("9000.00"),
            dpd=75,
            dpd_bucket="61-90",
            prior_contacts=2,
            notes="Why a visit: no answer to calls.",
        ),
        team=f"team-{a % 10}",
    )


def start_server(args: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, *args],
        env=env,
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}),
    )
    _wait_for_port(process, port)
    return process


def _wait_for_port(process: subprocess.Popen[bytes], port: int) -> None:
    from deploy import devstack

    deadline = time.monotonic() + 60
    while not devstack.port_open("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.1)
    time.sleep(0.5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    scenario: str, port: int, agents: list[dict[str, Any]], rate: float = 0.0, server_pid: int | None = None
) -> dict[str, Any]:
    spec = {
        "scenario": scenario,
        "port": port,
        "agents": agents,
        "rate": rate,
        "warmup_s": WARMUP_S,
        "duration_s": DURATION_S,
        "ok": [201] if scenario == "outcome" else [200],
        "promise_day": (datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=5)).isoformat(),
    }
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        spec["out"] = out.name
        loadgen = subprocess.Popen([sys.executable, __file__, "--loadgen"], stdin=subprocess.PIPE, cwd=ROOT)
        assert loadgen.stdin is not None
        loadgen.stdin.write(json.dumps(spec).encode())
        loadgen.stdin.close()
        # The server's CPU over the measured window only (not the warm-up, not the tail).
        time.sleep(WARMUP_S)
        cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
        time.sleep(DURATION_S)
        cpu_after = cpu_seconds(server_pid) if server_pid else 0.0
        if loadgen.wait() != 0:
            raise RuntimeError("load generator failed")
        result = json.loads(Path(out.name).read_text())
        result["cpu_s"] = cpu_after - cpu_before
        return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(x for run in runs for x in run["latencies"])
    errors: dict[str, int] = {}
    for run in runs:
        for code, count in run["errors"].items():
            errors[code] = errors.get(code, 0) + count
    cpu_s = sum(run.get("cpu_s", 0.0) for run in runs)
    return {
        "rps": round(len(latencies) / (DURATION_S * len(runs)), 1),
        "cpu_us": round(cpu_s / max(len(latencies), 1) * 1e6),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "requests": len(latencies),
        "errors": errors,
    }


SCENARIOS = ("bare", "route", "outcome")


def run_scenarios(
    ports: dict[str, int], pids: dict[str, int], agents: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Capacity (closed loop, interleaved rounds), then latency with paced agents."""
    capacity: dict[str, list[dict[str, Any]]] = {name: [] for name in SCENARIOS}
    for round_number in range(ROUNDS):
        for name in SCENARIOS:
            capacity[name].append(measure(name, ports[name], agents, server_pid=pids[name]))
            print(f"round {round_number + 1} {name}: {capacity[name][-1]['requests']} requests", flush=True)
    saturated = {name: summarise(runs) for name, runs in capacity.items()}
    rate = AGENTS / AGENT_INTERVAL_S
    paced = {}
    for name in SCENARIOS:
        paced[name] = summarise([measure(name, ports[name], agents, rate)])
        print(f"paced {name} at {rate} req/s: p99 {paced[name]['p99_ms']} ms", flush=True)
    return saturated, paced, rate


def main() -> int:
    from deploy import devstack
    from shared.auth import generate_keypair, issue_token
    from shared.events.topics import ALL_TOPICS
    from shared.kafka import ensure_topics

    if os.cpu_count() is None or len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs two CPUs: one for the servers, one for the load generator")
    admin = devstack.admin_dsn()
    db_name = f"fc_bench_visits_{os.getpid()}"
    database_url = asyncio.run(devstack.create_database(admin, db_name, drop_first=True))
    broker = devstack.broker()
    work = Path(tempfile.mkdtemp(prefix="bench-visits-"))
    servers: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(ensure_topics(broker.bootstrap, ALL_TOPICS, 3))
        visits = asyncio.run(seed(database_url))
        private, public = generate_keypair(work / "keys")
        agents = [
            {"token": issue_token(private.read_text(), agent_id, "agent", "fieldcollect", "fieldcollect-dev"),
             "visits": ids}
            for agent_id, ids in visits.items()
        ]  # fmt: skip
        visits_port, bare_port = devstack.free_port(), devstack.free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "KAFKA_ENABLE_IDEMPOTENCE": "false",
            "JWT_PUBLIC_KEY_FILE": str(public),
            "HTTP_PORT": str(visits_port),
            "RUN_CONSUMERS": "false",
            "RATE_LIMIT_PER_S": "1000000",
            "RATE_LIMIT_BURST": "1000000",
            "LOG_SPANS": os.environ.get("BENCH_LOG_SPANS", "false"),
        }
        servers.append(start_server(["-m", "services.visits"], env, visits_port, work / "visits.log"))
        servers.append(start_server([__file__, "--bare", str(bare_port)], env, bare_port, work / "bare.log"))
        ports = {"bare": bare_port, "route": visits_port, "outcome": visits_port}
        pids = {"bare": servers[1].pid, "route": servers[0].pid, "outcome": servers[0].pid}
        saturated, paced, rate = run_scenarios(ports, pids, agents)
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)
        broker.stop()
        asyncio.run(devstack.drop_database(admin, db_name))
        shutil.rmtree(work, ignore_errors=True)
    print(f"{AGENTS} agents; servers on CPU {SERVER_CPU}, load generator on CPU {LOADGEN_CPU}; "
          f"{DURATION_S:.0f} s per measurement after {WARMUP_S:.0f} s of warm-up")  # fmt: skip
    print(
        f"capacity: closed loop, {ROUNDS} interleaved rounds (latency here is queueing: {AGENTS} waiting requests)"
    )
    for name, s in saturated.items():
        print(f"  {name:<8} {s['rps']:>8.1f} req/s  server CPU {s['cpu_us']:>5} us/request  "
              f"p50 {s['p50_ms']:>7.2f} ms  p99 {s['p99_ms']:>7.2f} ms  errors {s['errors'] or 'none'}")  # fmt: skip
    print(
        f"latency: the same {AGENTS} agents, each sending one request every {AGENT_INTERVAL_S:g} s ({rate:g} req/s)"
    )
    for name, s in paced.items():
        print(f"  {name:<8} {s['rps']:>8.1f} req/s  p50 {s['p50_ms']:>7.2f} ms  p99 {s['p99_ms']:>7.2f} ms  "
              f"errors {s['errors'] or 'none'}")  # fmt: skip
    bare = saturated["bare"]["rps"]
    print(f"route {saturated['route']['rps'] / bare:.0%} and outcome {saturated['outcome']['rps'] / bare:.0%} "
          f"of bare capacity (target >= 50 %); p99 with paced agents (target <= 50 ms)")  # fmt: skip
    print(f"server CPU per request: route {saturated['route']['cpu_us'] / saturated['bare']['cpu_us']:.1f}x and "
          f"outcome {saturated['outcome']['cpu_us'] / saturated['bare']['cpu_us']:.1f}x bare's; span log lines "
          f"{'on' if os.environ.get('BENCH_LOG_SPANS') == 'true' else 'off'}")  # fmt: skip
    print(json.dumps({
        "route_rps": saturated["route"]["rps"], "route_p99_ms": paced["route"]["p99_ms"],
        "outcome_rps": saturated["outcome"]["rps"], "outcome_p99_ms": paced["outcome"]["p99_ms"],
        "bare_rps": bare, "bare_p99_ms": paced["bare"]["p99_ms"],
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        run_loadgen()
    elif len(sys.argv) > 1 and sys.argv[1] == "--bare":
        serve_bare(int(sys.argv[2]))
    else:
        raise SystemExit(main())
