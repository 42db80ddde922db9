"""The import-file command: a daily file from a path, with a progress bar.

The command commits accounts and their events (outbox) chunk by chunk; the intake service's
relay publishes them. `--publish` also runs a relay here and waits until the outbox is empty,
for a machine where the service is not running. Killed half-way, the same command again
resumes after the last committed chunk; run again after completion, it changes nothing.

Exit status: 0 imported (rejected rows, if any, are in the report), 2 refused (unknown
encoding, bad header, empty file), 3 the file is being imported by another process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from services.intake.csv_format import ENCODINGS, Chunk
from services.intake.file_import import import_path, summary
from services.intake.main import SCHEMA, SERVICE_DIR
from services.intake.repository import ImportRecord
from services.intake.segmentation import load_segmentation
from services.intake.settings import IntakeSettings
from shared.db import create_pool, migrate
from shared.errors import Conflict, Invalid
from shared.kafka import make_producer
from shared.logging import setup_logging
from shared.outbox import OutboxRelay, backlog


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.intake import-file")
    parser.add_argument("path", type=Path, help="the daily account file (CSV, docs/intake.md)")
    parser.add_argument("--encoding", default="utf-8", choices=sorted(ENCODINGS))
    parser.add_argument("--chunk-rows", type=int, default=None, help="rows per committed chunk")
    parser.add_argument("--publish", action="store_true", help="also publish the events to Kafka")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def import_file_command(argv: list[str]) -> int:
    args = _arguments(argv)
    settings = IntakeSettings()
    setup_logging(SCHEMA, settings.log_level)
    if not args.path.is_file():
        print(f"no such file: {args.path}", file=sys.stderr)
        return 2
    try:
        answer = asyncio.run(_import(args, settings))
    except Invalid as exc:
        print(f"refused: {exc.field}: {exc.reason}", file=sys.stderr)
        return 2
    except Conflict as exc:
        print(f"refused: {exc.reason}", file=sys.stderr)
        return 3
    print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    return 0


async def _import(args: argparse.Namespace, settings: IntakeSettings) -> dict[str, Any]:
    # The import's two connections (it applies two chunks at a time), and the relay's two.
    pool = await create_pool(settings.database_url, SCHEMA, 1, 4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, SCHEMA, SERVICE_DIR)
        async with contextlib.AsyncExitStack() as stack:
            if args.publish:
                await stack.enter_async_context(_publishing(pool, settings))
            bar = stack.enter_context(_ProgressBar(args.path.stat().st_size, disabled=args.no_progress))
            outcome = await import_path(
                pool,
                args.path,
                args.encoding,
                load_segmentation(),
                args.chunk_rows or settings.import_chunk_rows,
                bar.update,
            )
        return {**summary(outcome.record), "replayed": outcome.replayed}
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def _publishing(pool: Any, settings: IntakeSettings) -> Any:
    """A relay for the duration of the import; on the way out, wait until the outbox is empty."""
    producer = make_producer(settings, client_id=f"{settings.kafka_client_id}-{SCHEMA}-cli")
    await producer.start()
    relay = OutboxRelay(pool, SCHEMA, producer, settings.outbox_batch_size, settings.outbox_safety_poll_s)
    task = asyncio.create_task(relay.run())
    try:
        yield relay
        while True:
            async with pool.acquire() as conn:
                if await backlog(conn) == 0:
                    break
            await asyncio.sleep(0.2)
    finally:
        relay.stop()
        await task
        await producer.stop()


class _ProgressBar:
    """Bytes of the file read and committed, with the row counts so far (no row values)."""

    def __init__(self, total_bytes: int, disabled: bool) -> None:
        self._bar = tqdm(
            total=total_bytes, unit="B", unit_scale=True, desc="import", disable=disabled, file=sys.stderr
        )
        self._accepted = self._rejected = 0
        self._started = False

    def update(self, record: ImportRecord, chunk: Chunk) -> None:
        if not self._started:
            # A resumed import starts where its committed chunks ended.
            self._bar.n = record.high_water_byte
            self._started = True
        self._accepted += chunk.accepted
        self._rejected += chunk.rejected_rows
        self._bar.update(chunk.end.offset - self._bar.n)
        self._bar.set_postfix(accepted=self._accepted, rejected=self._rejected, refresh=False)

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *_: object) -> None:
        self._bar.close()
