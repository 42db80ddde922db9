"""`python -m services.<name> [serve|migrate]`: the same entrypoint for every service."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from shared.db import create_pool, migrate
from shared.logging import setup_logging
from shared.settings import ServiceSettings
from shared.tracing import configure_tracing

S = TypeVar("S", bound=ServiceSettings)


def run_service(
    create_app: Callable[[S], FastAPI],
    settings_type: type[S],
    schema: str,
    service_dir: Path,
    argv: list[str] | None = None,
) -> None:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "serve"
    settings = settings_type()
    setup_logging(schema, settings.log_level)
    configure_tracing(schema, settings, settings.log_spans)
    if command == "migrate":
        asyncio.run(_migrate(settings, schema, service_dir))
    elif command == "serve":
        uvicorn.run(
            create_app(settings),
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=30,
        )
    else:
        raise SystemExit(f"unknown command {command!r}: use serve or migrate")


async def _migrate(settings: ServiceSettings, schema: str, service_dir: Path) -> None:
    pool = await create_pool(settings.database_url, schema, 1, 1)
    try:
        async with pool.acquire() as conn:
            applied = await migrate(conn, schema, service_dir)
        print(f"{schema}: applied {applied or 'nothing (up to date)'}")
    finally:
        await pool.close()
