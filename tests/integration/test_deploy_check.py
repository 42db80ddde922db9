"""`python -m deploy.check` against the real PostgreSQL and broker: a deployment that is fit
for traffic passes; each kind of misconfiguration fails with a finding that names it."""

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from deploy import check, devstack
from shared.db import create_pool, migrate
from shared.events.topics import ALL_TOPICS, dead_letter_topic
from tests.conftest import TEST_PARTITIONS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def migrated_database(admin_dsn):
    """A database where every service's migrations have been applied."""
    name = f"fc_check_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(devstack.create_database(admin_dsn, name, drop_first=True))

    async def apply_all() -> None:
        for entry in check.SERVICES:
            located = entry.schema()
            if located is None:
                continue
            schema, service_dir = located
            pool = await create_pool(url, schema, 1, 1)
            try:
                async with pool.acquire() as conn:
                    await migrate(conn, schema, service_dir)
            finally:
                await pool.close()

    try:
        asyncio.run(apply_all())
        yield url
    finally:
        asyncio.run(devstack.drop_database(admin_dsn, name))


@pytest.fixture
def empty_database(admin_dsn):
    name = f"fc_check_empty_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(devstack.create_database(admin_dsn, name, drop_first=True))
    yield url
    asyncio.run(devstack.drop_database(admin_dsn, name))


@pytest.fixture
def deployment_env(migrated_database, kafka_bootstrap, keys, monkeypatch):
    """The environment of a healthy deployment on the test broker (its topics have
    TEST_PARTITIONS partitions); applied to this process and returned for subprocesses."""
    env = {
        "DATABASE_URL": migrated_database,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_PARTITIONS": str(TEST_PARTITIONS),
        "KAFKA_DLQ_PARTITIONS": "1",
        "KAFKA_REPLICATION_FACTOR": "1",
        "KAFKA_MIN_INSYNC_REPLICAS": "1",
        "JWT_PUBLIC_KEY_FILE": str(keys[1]),
        "SMS_PROVIDER_API_KEY": devstack.SANDBOX_KEY,
        "CHECK_TIMEOUT_S": "5",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("JWT_PUBLIC_KEY", "JWT_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "deploy.check", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def failures(report: check.Report, name: str) -> list[str]:
    return [f.detail for f in report.failures if f.check == name]


async def test_a_healthy_deployment_passes_after_its_topic_job(deployment_env) -> None:
    created = run_cli(deployment_env, "--create-topics", "--checks", "broker,topics")
    assert created.returncode == 0, created.stdout + created.stderr
    result = run_cli(deployment_env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "NOT READY" not in out and "ready:" in out
    for entry in check.SERVICES:
        assert f"{entry.name}: parsed" in out
    for schema in ("intake", "planner", "visits", "followup", "audit"):
        assert f"({schema}):" in out and "none pending" in out
    for topic in ALL_TOPICS:
        assert f"{topic} (catalog): {TEST_PARTITIONS} partitions" in out
    for group in ("planner.delinquency", "planner.feedback", "visits.assignments", "audit.contacts"):
        assert f"{dead_letter_topic(group)} (DLQ of {group})" in out


async def test_every_consumer_group_has_its_dead_letter_topic_expected(deployment_env) -> None:
    names = {t.name for t in check.expected_topics(check.CheckSettings(), check.SERVICES)}
    groups = [g for s in check.SERVICES for g in s.consumer_groups]
    assert len(groups) == 6
    assert names == set(ALL_TOPICS) | {dead_letter_topic(g) for g in groups}


async def test_missing_secrets_fail_settings_and_jwt(deployment_env, monkeypatch) -> None:
    monkeypatch.delenv("JWT_PUBLIC_KEY_FILE")
    monkeypatch.delenv("SMS_PROVIDER_API_KEY")
    report = await check.run_checks(check.SERVICES, ["settings", "jwt"])
    assert failures(report, "settings") == ["followup: SMS_PROVIDER_API_KEY (field required)"]
    assert len(failures(report, "jwt")) == 1 and "JWT_PUBLIC_KEY" in failures(report, "jwt")[0]


async def test_a_key_that_is_not_pem_fails(deployment_env, monkeypatch, tmp_path) -> None:
    bogus = tmp_path / "key.pem"
    bogus.write_text("not a key")
    monkeypatch.setenv("JWT_PUBLIC_KEY_FILE", str(bogus))
    report = await check.run_checks(check.SERVICES, ["jwt"])
    assert failures(report, "jwt") == ["JWT public key is not a PEM public key"]


async def test_pending_migrations_fail_per_service(deployment_env, empty_database, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_database)
    report = await check.run_checks(check.SERVICES, ["database", "migrations"])
    assert not failures(report, "database")
    failed = failures(report, "migrations")
    assert len(failed) == 5, failed
    assert any(f.startswith("visits (visits):") and "0001_visits.sql" in f for f in failed)
    assert all("0000_outbox_inbox.sql" in f for f in failed)


async def test_a_migration_edited_after_it_was_applied_fails(migrated_database, deployment_env) -> None:
    import asyncpg

    conn = await asyncpg.connect(migrated_database)
    try:
        original = await conn.fetchval(
            "SELECT checksum FROM visits.schema_migrations WHERE name = '0001_visits.sql'"
        )
        await conn.execute(
            "UPDATE visits.schema_migrations SET checksum = 'x' WHERE name = '0001_visits.sql'"
        )
        report = await check.run_checks(check.SERVICES, ["migrations"])
        await conn.execute(
            "UPDATE visits.schema_migrations SET checksum = $1 WHERE name = '0001_visits.sql'", original
        )
    finally:
        await conn.close()
    assert failures(report, "migrations") == ["visits (visits): edited after being applied: 0001_visits.sql"]


async def test_unreachable_database_and_broker_fail_and_the_cli_exits_1(deployment_env) -> None:
    closed = devstack.free_port()
    env = {
        **deployment_env,
        "DATABASE_URL": f"postgresql://postgres:s3cret@127.0.0.1:{closed}/nowhere",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed}",
        "CHECK_TIMEOUT_S": "2",
    }
    result = run_cli(env)
    assert result.returncode == 1, result.stdout
    out = result.stdout
    assert f"FAIL  database    postgresql://postgres:***@127.0.0.1:{closed}/nowhere: unreachable" in out
    assert "s3cret" not in out
    assert f"FAIL  broker      127.0.0.1:{closed}: unreachable" in out
    assert "skip  topics" in out and "skip  migrations" in out
    assert "NOT READY" in out


async def test_too_few_partitions_or_in_sync_replicas_fail(deployment_env, monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_PARTITIONS", "64")
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "2")
    report = await check.run_checks(check.SERVICES, ["broker", "topics"])
    failed = failures(report, "topics")
    catalog = [f for f in failed if "(catalog)" in f]
    assert len(catalog) == len(ALL_TOPICS)
    assert all(f"{TEST_PARTITIONS} partitions, expected at least 64" in f for f in catalog)
    assert all("in-sync replica(s) on some partition, acks=all needs 2" in f for f in failed)


async def test_a_missing_topic_fails_and_is_not_created_by_the_check(deployment_env, kafka_bootstrap) -> None:
    missing = f"test.check.missing.{uuid.uuid4().hex[:8]}"
    settings = check.CheckSettings()
    report = check.Report()
    client = await check.connect_broker(report, settings)
    assert client is not None
    try:
        await check.check_topics(report, client, settings, [check.TopicSpec(missing, 1, "catalog")])
    finally:
        await client.close()
    assert failures(report, "topics") == [f"{missing} (catalog): missing"]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert missing not in await admin.list_topics(), "asking must not auto-create the topic"
    finally:
        await admin.close()


async def test_production_refuses_development_settings(deployment_env, monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_ENABLE_IDEMPOTENCE", "false")
    report = await check.run_checks(check.SERVICES, ["settings"], production=True)
    failed = failures(report, "settings")
    assert "production: KAFKA_ENABLE_IDEMPOTENCE must be true" in failed
    assert "production: KAFKA_REPLICATION_FACTOR must be at least 3" in failed
    assert "production: KAFKA_MIN_INSYNC_REPLICAS must be at least 2" in failed
    assert "production: JWT_ISSUER is the development issuer 'fieldcollect-dev'" in failed


def test_dsn_passwords_are_redacted() -> None:
    assert check.redact_dsn("postgresql://app:pw@db:5432/fc") == "postgresql://app:***@db:5432/fc"
    assert check.redact_dsn("postgresql://app@db/fc") == "postgresql://app@db/fc"


def test_unknown_checks_are_a_usage_error(capsys) -> None:
    assert check.main(["--checks", "settings,nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err
