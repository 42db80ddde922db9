"""`python -m deploy.check`: is this deployment fit for traffic?

Reads the same environment as the services and checks, in order:

- settings: every service's settings parse (names the fields that do not, never values);
- jwt: the token issuer's public key is present and is a PEM public key;
- database: PostgreSQL answers at DATABASE_URL;
- migrations: every service schema has all its numbered SQL files applied, unedited;
- broker: the Kafka bootstrap servers answer;
- topics: every catalog topic and every consumer group's dead-letter topic exists, with at
  least the configured partitions, replicas and in-sync replicas (explicit metadata requests
  that never auto-create a topic; `end_offsets` is not used).

Prints one line per finding and exits 1 if anything failed (2 on a usage error). With
`--create-topics` it first creates the missing topics (the deployment's topic job); with
`--production` it also refuses development settings (idempotence off, replication below 3,
min.insync.replicas below 2, the dev token issuer, an implicit DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest
from pydantic import Field, ValidationError

from shared.db import PLUMBING_MIGRATIONS, pending_migrations
from shared.events.topics import ALL_TOPICS, dead_letter_topic
from shared.settings import ServiceSettings

CHECKS = ("settings", "jwt", "database", "migrations", "broker", "topics")
DEV_ISSUER = "fieldcollect-dev"
UNKNOWN_TOPIC = 3  # Kafka error code UNKNOWN_TOPIC_OR_PARTITION
TOPIC_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS (another job created it first)


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """A deployable service: its settings, its schema and the consumer groups it runs.

    The groups are listed here rather than read from the services, whose consumer
    declarations are wired at start-up; tests/unit/test_deploy_manifests.py fails when a
    `group_id` in services/ is missing here (its dead-letter topic would not be created).
    """

    name: str
    settings: str  # "module:Class"
    main: str | None = None  # module defining SCHEMA and SERVICE_DIR; None: owns no schema
    consumer_groups: tuple[str, ...] = ()

    def settings_type(self) -> type[ServiceSettings]:
        module, _, attribute = self.settings.partition(":")
        settings_type: type[ServiceSettings] = getattr(importlib.import_module(module), attribute)
        return settings_type

    def schema(self) -> tuple[str, Path] | None:
        if self.main is None:
            return None
        module = importlib.import_module(self.main)
        return str(module.SCHEMA), Path(module.SERVICE_DIR)


SERVICES: tuple[ServiceEntry, ...] = (
    ServiceEntry("intake", "services.intake.settings:IntakeSettings", "services.intake.main"),
    ServiceEntry(
        "planner",
        "services.planner.settings:PlannerSettings",
        "services.planner.main",
        ("planner.delinquency", "planner.feedback"),
    ),
    ServiceEntry(
        "visits", "services.visits.settings:VisitsSettings", "services.visits.main", ("visits.assignments",)
    ),
    ServiceEntry(
        "followup",
        "services.followup.settings:FollowupSettings",
        "services.followup.main",
        ("followup.delinquency", "followup.outcomes"),
    ),
    ServiceEntry(
        "audit", "services.audit.settings:AuditSettings", "services.audit.main", ("audit.contacts",)
    ),
    ServiceEntry("ops", "services.ops.settings:OpsSettings"),
)


class CheckSettings(ServiceSettings):
    """What a deployment promises about its topics, on top of the services' own settings."""

    kafka_partitions: int = Field(default=6, ge=1, description="Partitions of every catalog topic.")
    kafka_dlq_partitions: int = Field(default=1, ge=1, description="Partitions of each dead-letter topic.")
    kafka_replication_factor: int = Field(default=1, ge=1, description="Replicas of every topic.")
    kafka_min_insync_replicas: int = Field(
        default=1, ge=1, description="min.insync.replicas every topic must enforce (acks=all)."
    )
    check_timeout_s: float = Field(default=10.0, gt=0, description="Per connection attempt.")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    purpose: str


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: str  # "ok", "FAIL" or "skip"
    detail: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def ok(self, check: str, detail: str) -> None:
        self.findings.append(Finding(check, "ok", detail))

    def fail(self, check: str, detail: str) -> None:
        self.findings.append(Finding(check, "FAIL", detail))

    def skip(self, check: str, detail: str) -> None:
        self.findings.append(Finding(check, "skip", detail))

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "FAIL"]

    def render(self) -> str:
        lines = [f"  {f.status:<5} {f.check:<11} {f.detail}" for f in self.findings]
        failed = len(self.failures)
        verdict = (
            f"NOT READY: {failed} of {len(self.findings)} findings failed"
            if failed
            else f"ready: {len(self.findings)} findings, none failed"
        )
        return "\n".join([*lines, verdict])


def expected_topics(settings: CheckSettings, services: Iterable[ServiceEntry]) -> list[TopicSpec]:
    """The catalog topics plus one dead-letter topic per consumer group of these services."""
    topics = [TopicSpec(t, settings.kafka_partitions, "catalog") for t in ALL_TOPICS]
    groups = sorted({g for s in services for g in s.consumer_groups})
    topics += [TopicSpec(dead_letter_topic(g), settings.kafka_dlq_partitions, f"DLQ of {g}") for g in groups]
    return topics


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for the report."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rpartition("@")
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


# --- the checks --------------------------------------------------------------------


def check_settings(report: Report, services: Sequence[ServiceEntry]) -> CheckSettings | None:
    for entry in services:
        try:
            entry.settings_type()()
        except ValidationError as exc:
            fields = ", ".join(
                f"{'.'.join(str(p) for p in e['loc']).upper()} ({e['msg'].lower()})" for e in exc.errors()
            )
            report.fail("settings", f"{entry.name}: {fields}")
        except (ImportError, AttributeError, ValueError, OSError) as exc:
            report.fail("settings", f"{entry.name}: settings not loadable ({type(exc).__name__}: {exc})")
        else:
            report.ok("settings", f"{entry.name}: parsed")
    return load_check_settings(report)


def load_check_settings(report: Report) -> CheckSettings | None:
    try:
        return CheckSettings()
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]).upper() for e in exc.errors())
        report.fail("settings", f"deployment check settings invalid: {fields}")
        return None


def check_production(report: Report, settings: CheckSettings) -> None:
    """Development defaults that must not reach a production deployment."""
    problems = []
    if not settings.kafka_enable_idempotence:
        problems.append("KAFKA_ENABLE_IDEMPOTENCE must be true")
    if settings.kafka_replication_factor < 3:
        problems.append("KAFKA_REPLICATION_FACTOR must be at least 3")
    if settings.kafka_min_insync_replicas < 2:
        problems.append("KAFKA_MIN_INSYNC_REPLICAS must be at least 2")
    if settings.kafka_min_insync_replicas >= settings.kafka_replication_factor:
        problems.append(
            "KAFKA_MIN_INSYNC_REPLICAS must be below the replication factor (one broker may be down)"
        )
    if settings.jwt_issuer == DEV_ISSUER:
        problems.append(f"JWT_ISSUER is the development issuer {DEV_ISSUER!r}")
    if "DATABASE_URL" not in os.environ:
        problems.append("DATABASE_URL is not set (the default points at a local server)")
    for problem in problems:
        report.fail("settings", f"production: {problem}")
    if not problems:
        report.ok("settings", "production: idempotent producer, replicated topics, real issuer")


def check_jwt(report: Report, settings: CheckSettings) -> None:
    from cryptography.hazmat.primitives import serialization

    try:
        pem = settings.token_public_key()
    except (RuntimeError, OSError) as exc:
        report.fail("jwt", f"no public key: {exc}")
        return
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        report.fail("jwt", "JWT public key is not a PEM public key")
        return
    report.ok("jwt", f"public key loaded ({type(key).__name__.lstrip('_')})")


async def check_database(report: Report, settings: CheckSettings) -> asyncpg.Connection | None:
    target = redact_dsn(settings.database_url)
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.check_timeout_s)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        report.fail("database", f"{target}: unreachable ({type(exc).__name__}: {exc})")
        return None
    version = await conn.fetchval("SHOW server_version")
    report.ok("database", f"{target}: PostgreSQL {version}")
    return conn


def _migration_files(service_dir: Path) -> list[Path]:
    """The order shared.db.migrate applies: the plumbing, then the service's own files."""
    return sorted(PLUMBING_MIGRATIONS.glob("*.sql")) + sorted((service_dir / "migrations").glob("*.sql"))


async def check_migrations(
    report: Report, conn: asyncpg.Connection | None, services: Sequence[ServiceEntry]
) -> None:
    for entry in services:
        try:
            located = entry.schema()
        except (ImportError, AttributeError) as exc:
            report.fail("migrations", f"{entry.name}: schema not loadable ({type(exc).__name__}: {exc})")
            continue
        if located is None:
            continue
        schema, service_dir = located
        if conn is None:
            report.skip("migrations", f"{entry.name}: database unreachable")
            continue
        pending = await pending_migrations(conn, schema, service_dir)
        if pending:
            report.fail(
                "migrations", f"{entry.name} ({schema}): {len(pending)} pending: {', '.join(pending)}"
            )
            continue
        applied = {
            r["name"]: r["checksum"]
            for r in await conn.fetch(f'SELECT name, checksum FROM "{schema}".schema_migrations')
        }
        edited = [
            p.name
            for p in _migration_files(service_dir)
            if applied.get(p.name) != hashlib.sha256(p.read_text().encode()).hexdigest()
        ]
        if edited:
            report.fail(
                "migrations", f"{entry.name} ({schema}): edited after being applied: {', '.join(edited)}"
            )
        else:
            report.ok("migrations", f"{entry.name} ({schema}): {len(applied)} applied, none pending")


async def connect_broker(
    report: Report, settings: CheckSettings, wait_s: float = 0.0
) -> AIOKafkaClient | None:
    """A client that joins no group; retries until `wait_s` has passed (topic jobs start early)."""
    deadline = time.monotonic() + wait_s
    while True:
        client = AIOKafkaClient(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=f"{settings.kafka_client_id}-check",
            request_timeout_ms=int(settings.check_timeout_s * 1000),
        )
        try:
            await asyncio.wait_for(client.bootstrap(), settings.check_timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            await client.close()
            if time.monotonic() < deadline:
                await asyncio.sleep(2)
                continue
            report.fail(
                "broker", f"{settings.kafka_bootstrap_servers}: unreachable ({type(exc).__name__}: {exc})"
            )
            return None
        brokers = len(client.cluster.brokers())
        report.ok("broker", f"{settings.kafka_bootstrap_servers}: {brokers} broker(s) answer")
        return client


async def topic_metadata(client: AIOKafkaClient, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Metadata of exactly these topics, asking the broker not to create missing ones."""
    node_id = client.get_random_node()
    response = await client.send(node_id, MetadataRequest(list(names), allow_auto_topic_creation=False))
    return {t["topic"]: t for t in response.to_object()["topics"]}


async def check_topics(
    report: Report, client: AIOKafkaClient | None, settings: CheckSettings, topics: Sequence[TopicSpec]
) -> None:
    if client is None:
        report.skip("topics", f"{len(topics)} topics not checked: broker unreachable")
        return
    metadata = await topic_metadata(client, [t.name for t in topics])
    min_isr_problems = await _min_insync_problems(
        client, settings, [t.name for t in topics if t.name in metadata]
    )
    for spec in topics:
        topic = metadata.get(spec.name)
        if topic is None or topic["error_code"] == UNKNOWN_TOPIC:
            report.fail("topics", f"{spec.name} ({spec.purpose}): missing")
            continue
        if topic["error_code"]:
            report.fail("topics", f"{spec.name}: metadata error code {topic['error_code']}")
            continue
        partitions = topic["partitions"]
        problems = []
        if len(partitions) < spec.partitions:
            problems.append(f"{len(partitions)} partitions, expected at least {spec.partitions}")
        leaderless = [p["partition"] for p in partitions if p["leader"] < 0]
        if leaderless:
            problems.append(f"no leader for partitions {leaderless}")
        replicas = min((len(p["replicas"]) for p in partitions), default=0)
        if replicas < settings.kafka_replication_factor:
            problems.append(f"{replicas} replica(s), expected {settings.kafka_replication_factor}")
        in_sync = min((len(p["isr"]) for p in partitions), default=0)
        if in_sync < settings.kafka_min_insync_replicas:
            problems.append(
                f"{in_sync} in-sync replica(s) on some partition, acks=all needs {settings.kafka_min_insync_replicas}"
            )
        if min_isr_problem := min_isr_problems.get(spec.name):
            problems.append(min_isr_problem)
        if problems:
            report.fail("topics", f"{spec.name} ({spec.purpose}): {'; '.join(problems)}")
        else:
            report.ok(
                "topics",
                f"{spec.name} ({spec.purpose}): {len(partitions)} partitions × {replicas} replica(s)",
            )


async def _min_insync_problems(
    client: AIOKafkaClient, settings: CheckSettings, names: Sequence[str]
) -> dict[str, str]:
    """Per topic, a problem with its min.insync.replicas ('' when fine); asked only when it matters."""
    if settings.kafka_min_insync_replicas <= 1 or not names:
        return {}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=int(settings.check_timeout_s * 1000),
    )
    try:
        await admin.start()
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n, {"min.insync.replicas": None}) for n in names]
        )
    except (KafkaError, OSError, TimeoutError) as exc:
        return dict.fromkeys(names, f"min.insync.replicas unreadable ({type(exc).__name__})")
    finally:
        await admin.close()
    problems = dict.fromkeys(names, "min.insync.replicas not reported")
    for response in responses:
        for resource in response.to_object()["resources"]:
            values = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
            value = values.get("min.insync.replicas")
            if value is not None and int(value) >= settings.kafka_min_insync_replicas:
                problems[resource["resource_name"]] = ""
            elif value is not None:
                problems[resource["resource_name"]] = (
                    f"min.insync.replicas={value}, expected {settings.kafka_min_insync_replicas}"
                )
    return problems


async def create_missing_topics(
    report: Report, client: AIOKafkaClient, settings: CheckSettings, topics: Sequence[TopicSpec]
) -> None:
    """Create what is missing; never adds partitions to an existing topic (that remaps keys)."""
    metadata = await topic_metadata(client, [t.name for t in topics])
    missing = [t for t in topics if t.name not in metadata or metadata[t.name]["error_code"] == UNKNOWN_TOPIC]
    if not missing:
        report.ok("topics", f"create: all {len(topics)} topics exist already")
        return
    configs = {}
    if settings.kafka_min_insync_replicas > 1:
        configs["min.insync.replicas"] = str(settings.kafka_min_insync_replicas)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=int(settings.check_timeout_s * 1000),
    )
    await admin.start()
    try:
        for spec in missing:
            new = NewTopic(
                spec.name, spec.partitions, settings.kafka_replication_factor, topic_configs=configs
            )
            try:
                response = await admin.create_topics([new])
            except TopicAlreadyExistsError:
                report.ok("topics", f"create: {spec.name} created concurrently")
                continue
            errors = [
                e for e in response.to_object()["topic_errors"] if e["error_code"] not in (0, TOPIC_EXISTS)
            ]
            if errors:
                report.fail(
                    "topics",
                    f"create: {spec.name}: error {errors[0]['error_code']} {errors[0]['error_message']}",
                )
            else:
                report.ok(
                    "topics",
                    f"create: {spec.name} with {spec.partitions} partitions × {settings.kafka_replication_factor}",
                )
    finally:
        await admin.close()


# --- the command ---------------------------------------------------------------------


async def run_checks(
    services: Sequence[ServiceEntry],
    checks: Sequence[str] = CHECKS,
    *,
    create_topics: bool = False,
    production: bool = False,
    wait_s: float = 0.0,
) -> Report:
    report = Report()
    settings = check_settings(report, services) if "settings" in checks else load_check_settings(report)
    if settings is None:
        return report
    if production:
        check_production(report, settings)
    if "jwt" in checks:
        check_jwt(report, settings)
    conn = None
    if "database" in checks or "migrations" in checks:
        conn = await check_database(report, settings)
    try:
        if "migrations" in checks:
            await check_migrations(report, conn, services)
    finally:
        if conn is not None:
            await conn.close()
    if "broker" in checks or "topics" in checks or create_topics:
        client = await connect_broker(report, settings, wait_s)
        try:
            topics = expected_topics(settings, services)
            if create_topics and client is not None:
                await create_missing_topics(report, client, settings, topics)
            if "topics" in checks:
                await check_topics(report, client, settings, topics)
        finally:
            if client is not None:
                await client.close()
    return report


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="python -m deploy.check",
        description="Validate a deployment's configuration before it takes traffic.",
    )
    parse.add_argument(
        "--services",
        default=",".join(s.name for s in SERVICES),
        help="comma-separated services to check (default: all)",
    )
    parse.add_argument(
        "--checks", default=",".join(CHECKS), help=f"comma-separated subset of {', '.join(CHECKS)}"
    )
    parse.add_argument("--create-topics", action="store_true", help="create missing topics first")
    parse.add_argument("--production", action="store_true", help="also refuse development settings")
    parse.add_argument(
        "--wait-s", type=float, default=0.0, help="keep trying to reach the broker this long (jobs)"
    )
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    by_name = {s.name: s for s in SERVICES}
    names = [n.strip() for n in args.services.split(",") if n.strip()]
    checks = [c.strip() for c in args.checks.split(",") if c.strip()]
    unknown = [n for n in names if n not in by_name] + [c for c in checks if c not in CHECKS]
    if unknown:
        print(f"unknown service or check: {', '.join(unknown)}", file=sys.stderr)
        return 2
    services = [by_name[n] for n in names]
    print(f"Fieldcollect deployment check: {', '.join(names)}", flush=True)
    report = asyncio.run(
        run_checks(
            services, checks, create_topics=args.create_topics, production=args.production, wait_s=args.wait_s
        )
    )
    print(report.render(), flush=True)
    return 1 if report.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
