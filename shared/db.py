"""asyncpg pools bound to a service's schema, and the SQL migrations that build it."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import asyncpg
import orjson

log = logging.getLogger(__name__)

PLUMBING_MIGRATIONS = Path(__file__).parent / "migrations"


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(_: asyncpg.Connection) -> None:
    """A pool reset without the reset query: asyncpg still rolls back a transaction left open
    and drops listener callbacks, but a SET, LISTEN or advisory lock would outlive the checkout."""


async def create_pool(
    dsn: str,
    schema: str,
    min_size: int = 2,
    max_size: int = 10,
    reset_sessions: bool = True,
    plan_cache_mode: str = "auto",
) -> Any:
    """A pool whose connections see the service's own schema first.

    `plan_cache_mode="force_custom_plan"` plans every execution of a prepared statement with its
    arguments: a generic plan made while tables were small keeps its sequential scans as they grow.

    `reset_sessions=False` spares the reset query asyncpg runs at every release (one round trip
    per checkout, as much as the query of a hot read): for services whose requests leave no
    session state behind (no SET, LISTEN or advisory lock outside a transaction).
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=None if reset_sessions else _keep_session,
        server_settings={
            "search_path": f"{schema},public",
            "application_name": schema,
            "plan_cache_mode": plan_cache_mode,
        },
    )


def _migration_files(service_dir: Path) -> list[Path]:
    files = sorted(PLUMBING_MIGRATIONS.glob("*.sql"))
    return files + sorted((service_dir / "migrations").glob("*.sql"))


async def migrate(conn: asyncpg.Connection, schema: str, service_dir: Path) -> list[str]:
    """Apply the plumbing and the service's numbered SQL files once each, in order.

    Safe to run from several processes at once (an advisory lock serialises them) and
    at every start-up. Refuses to run when an applied file has been edited since.
    """
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied: dict[str, str] = {
            r["name"]: r["checksum"] for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")
        }
        for path in _migration_files(service_dir):
            sql = path.read_text()
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if path.name in applied:
                if applied[path.name] != checksum:
                    raise RuntimeError(f"migration {path.name} changed after it was applied")
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                path.name,
                checksum,
            )
            applied_now.append(path.name)
    if applied_now:
        log.info("migrations applied", extra={"schema": schema, "migrations": applied_now})
    return applied_now


async def pending_migrations(conn: asyncpg.Connection, schema: str, service_dir: Path) -> list[str]:
    exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.schema_migrations")
    applied: set[str] = set()
    if exists:
        applied = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
    return [p.name for p in _migration_files(service_dir) if p.name not in applied]
