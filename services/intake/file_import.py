"""Importing a daily account file: streamed, validated, diffed in SQL, committed in chunks.

Each chunk commits in one transaction: its accounts, its events (outbox), its rejected rows
and the import's high-water mark (row, line and byte offset). A killed import therefore
resumes exactly after the last committed chunk, and a file whose content was imported
before (same hash and encoding) is not read again.

Two chunks with different accounts are applied at once on two connections (see
`_commit_chunk`), while a worker thread parses the next, so the two cores share the work:
Python validates, PostgreSQL diffs and writes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from services.intake import repository
from services.intake.csv_format import Chunk, ChunkReader, Position, encoding_name, read_header
from services.intake.repository import ChunkProgress, ImportRecord
from services.intake.segmentation import Segmentation
from services.intake.settings import IntakeSettings
from shared.errors import Conflict, Invalid

log = logging.getLogger(__name__)

SOURCE = "/fieldcollect/intake"
_HASH_BLOCK = 1024 * 1024
# The parser thread and the event loop share the GIL. The loop needs it only in short turns
# (each socket write of a chunk's COPY, each reply), but at Python's default 5 ms switch
# interval it waits up to 5 ms for each, and a chunk takes dozens of turns. 1 ms keeps
# PostgreSQL fed (measured: imports about a quarter faster); it is process-wide, and only
# ever lowered.
_SWITCH_INTERVAL_S = 0.001
# How long an import waits for a second connection from the pool before applying one chunk
# at a time.
_SECOND_LANE_WAIT_S = 1.0

Progress = Callable[[ImportRecord, Chunk], None]


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    record: ImportRecord
    replayed: bool  # the file had been imported before: nothing was read or published


@dataclass(frozen=True, slots=True)
class FileFacts:
    path: Path
    sha256: str
    size: int


def file_facts(path: Path) -> FileFacts:
    """The content hash that identifies a file, read in blocks (never the whole file at once)."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return FileFacts(path, digest.hexdigest(), size)


def check_header(path: Path, encoding: str) -> None:
    """Refuse a file whose header is not the documented one before anything is recorded."""
    with path.open("rb") as raw:
        read_header(raw, encoding)


async def register_import(
    pool: Any,
    facts: FileFacts,
    encoding: str,
    seg: Segmentation,
    *,
    source: str,
    file_name: str | None,
) -> ImportRecord:
    """The import of this content and encoding: the earlier one if there was one."""
    encoding = encoding_name(encoding)
    await asyncio.to_thread(check_header, facts.path, encoding)
    async with pool.acquire() as conn:
        record, _ = await repository.create_import(
            conn,
            file_sha256=facts.sha256,
            encoding=encoding,
            file_name=file_name,
            file_bytes=facts.size,
            source=source,
            stored_path=str(facts.path) if source == "upload" else None,
            segmentation_version=seg.version,
        )
    return record


async def import_path(
    pool: Any,
    path: Path,
    encoding: str,
    seg: Segmentation,
    chunk_rows: int,
    progress: Progress | None = None,
) -> ImportOutcome:
    """Import a file from the local filesystem (the CLI): a completed earlier import is a no-op."""
    facts = await asyncio.to_thread(file_facts, path)
    record = await register_import(pool, facts, encoding, seg, source="path", file_name=path.name)
    return await run_import(pool, record, path, seg, chunk_rows, progress)


async def run_import(
    pool: Any,
    record: ImportRecord,
    path: Path,
    seg: Segmentation,
    chunk_rows: int,
    progress: Progress | None = None,
    stopping: asyncio.Event | None = None,
) -> ImportOutcome:
    """Run or resume an import until the end of the file (or until `stopping` is set)."""
    if record.status == "completed":
        return ImportOutcome(record, replayed=True)
    async with pool.acquire() as conn:
        if not await repository.try_lock_import(conn, record.import_id):
            raise Conflict("this file is being imported by another process right now", "file")
        try:
            current = await repository.get_import(conn, record.import_id)
            if current is None or current.status == "completed":
                return ImportOutcome(current or record, replayed=True)
            await _run_chunks(pool, conn, current, path, seg, chunk_rows, progress, stopping)
            final = await repository.get_import(conn, record.import_id)
        finally:
            await repository.unlock_import(conn, record.import_id)
    assert final is not None
    if final.status == "completed" and final.source == "upload" and final.stored_path:
        # Whoever finishes an upload's import (the service, or the CLI given the same file)
        # deletes the uploaded copy where it can: it holds personal data.
        await asyncio.to_thread(remove_file, Path(final.stored_path))
    return ImportOutcome(final, replayed=False)


async def _run_chunks(
    pool: Any,
    conn: asyncpg.Connection,
    record: ImportRecord,
    path: Path,
    seg: Segmentation,
    chunk_rows: int,
    progress: Progress | None,
    stopping: asyncio.Event | None,
) -> None:
    sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH_INTERVAL_S))
    resumed = record.high_water_byte > 0
    log.info(
        "import running",
        extra={"import_id": str(record.import_id), "resumed_at_row": record.high_water_row},
    )
    async with contextlib.AsyncExitStack() as stack:
        lanes = [repository.StagedApply(conn, SOURCE)]
        second = await _second_lane(pool, conn, stack)
        if second is not None:
            lanes.append(repository.StagedApply(second, SOURCE))
        for lane in lanes:
            await lane.prepare()
        with path.open("rb") as raw:
            positions, header_end = read_header(raw, record.encoding)
            start = (
                Position(record.high_water_row, record.high_water_line, record.high_water_byte)
                if resumed
                else header_end
            )
            reader = ChunkReader(raw, record.encoding, positions, start, seg, chunk_rows)
            parsing = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
            in_flight: collections.deque[tuple[asyncio.Task[None], Chunk]] = collections.deque()
            dispatched = 0
            try:
                while True:
                    chunk = await parsing
                    # At most one chunk per lane in flight, and never two holding the same account.
                    while in_flight and (
                        len(in_flight) >= len(lanes)
                        or any(not c.accounts.isdisjoint(chunk.accounts) for _, c in in_flight)
                    ):
                        await _finished(in_flight.popleft(), record, progress)
                    staged = asyncio.Event()

                    def parse_next(eof: bool = chunk.eof, staged: asyncio.Event = staged) -> None:
                        nonlocal parsing
                        if not eof:
                            parsing = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
                        staged.set()

                    previous = in_flight[-1][0] if in_flight else None
                    task = asyncio.create_task(
                        _commit_chunk(
                            lanes[dispatched % len(lanes)],
                            record,
                            chunk,
                            seg,
                            parse_next,
                            previous,
                            len(lanes) > 1,
                        )
                    )
                    dispatched += 1
                    in_flight.append((task, chunk))
                    if chunk.eof or (stopping is not None and stopping.is_set()):
                        break
                    waiting = asyncio.ensure_future(staged.wait())
                    await asyncio.wait({waiting, task}, return_when=asyncio.FIRST_COMPLETED)
                    if not staged.is_set():
                        waiting.cancel()
                        await task  # it failed before staging: raises
                while in_flight:
                    await _finished(in_flight.popleft(), record, progress)
            finally:
                # Whatever happened: every transaction ends and the parser thread is done with
                # the file before it closes and the connections go back.
                for task, _ in in_flight:
                    with contextlib.suppress(BaseException):
                        await task
                with contextlib.suppress(Exception):
                    await parsing
    log.info(
        "import stopped" if not chunk.eof else "import completed", extra={"import_id": str(record.import_id)}
    )


async def _second_lane(
    pool: Any, conn: asyncpg.Connection, stack: contextlib.AsyncExitStack
) -> asyncpg.Connection | None:
    """A second connection to apply chunks on, when this import may pipeline (else None).

    Two chunks in flight on two connections keep PostgreSQL busy on both cores: one chunk is
    diffed and written while the next is copied in and diffed too. Only one import at a time
    pipelines (a session lock); the others, and every batch, apply one chunk at a time.
    """
    if not await repository.try_lock_pipeline(conn):
        return None
    stack.push_async_callback(_quietly, repository.unlock_pipeline(conn))
    try:
        second = await pool.acquire(timeout=_SECOND_LANE_WAIT_S)
    except TimeoutError:
        return None  # a busy pool: one lane
    stack.push_async_callback(pool.release, second)
    return second


async def _quietly(step: Awaitable[None]) -> None:
    """A clean-up step that must not hide the error that brought us here."""
    with contextlib.suppress(Exception):
        await step


async def _finished(
    flight: tuple[asyncio.Task[None], Chunk], record: ImportRecord, progress: Progress | None
) -> None:
    task, chunk = flight
    await task
    if progress is not None:
        progress(record, chunk)


async def _commit_chunk(
    applier: repository.StagedApply,
    record: ImportRecord,
    chunk: Chunk,
    seg: Segmentation,
    staged: Callable[[], None],
    previous: asyncio.Task[None] | None,
    pipelined: bool,
) -> None:
    """Commit one chunk. `staged` is called once its rows are in PostgreSQL: the parser thread
    starts on the next chunk then, while PostgreSQL diffs this one, and not during the COPY,
    when it would hold the GIL against the event loop feeding PostgreSQL.

    A pipelined chunk (`pipelined`: this import holds the pipeline lock) runs beside the one
    before it (`previous`), whose accounts are others: it takes the apply lock in shared
    mode (batches and other imports take it exclusively, so they wait for both), and it
    moves the high-water mark and commits only after `previous` committed, so that chunks
    commit in file order and a resumed import starts after the last of them.
    """
    conn = applier.conn
    import_id = record.import_id
    async with conn.transaction():
        await repository.lock_apply(conn, shared=pipelined)
        result = repository.ChunkResult(0, 0, 0)
        if chunk.accepted:
            await applier.stage(chunk.stage_csv)
        staged()
        if chunk.accepted:
            result = await applier.apply(f"import:{import_id}", record.trace_id, str(import_id), seg.version)
        await repository.record_rejections(conn, import_id, chunk.problems)
        if previous is not None:
            await previous
        await repository.advance_import(
            conn,
            import_id,
            ChunkProgress(
                rows=chunk.end.row,
                line=chunk.end.line,
                offset=chunk.end.offset,
                accepted=chunk.accepted,
                rejected=chunk.rejected_rows,
                unchanged=result.unchanged,
                out_of_order=result.out_of_order,
                events=result.events,
                completed=chunk.eof,
            ),
        )


def summary(record: ImportRecord, reasons: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What the API and the CLI say about an import: counts and ids, never row values."""
    answer: dict[str, Any] = {
        "import_id": str(record.import_id),
        "status": record.status,
        "file_name": record.file_name,
        "file_sha256": record.file_sha256,
        "file_bytes": record.file_bytes,
        "encoding": record.encoding,
        "source": record.source,
        "bytes_read": record.high_water_byte,
        "rows_read": record.high_water_row,
        "rows_accepted": record.rows_accepted,
        "rows_rejected": record.rows_rejected,
        "rows_unchanged": record.rows_unchanged,
        "rows_out_of_order": record.rows_out_of_order,
        "events_published": record.events_staged,
        "chunks_committed": record.chunks_committed,
        "segmentation_version": record.segmentation_version,
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "rejected_rows": f"/v1/imports/{record.import_id}/rejected-rows",
    }
    if reasons is not None:
        answer["rejection_reasons"] = reasons
    return answer


class ImportRunner:
    """The service's background imports (uploads): one task per import, stopped between chunks."""

    def __init__(self, seg: Segmentation, chunk_rows: int) -> None:
        self._seg = seg
        self._chunk_rows = chunk_rows
        self._tasks: dict[uuid.UUID, asyncio.Task[ImportOutcome]] = {}
        self._stopping = asyncio.Event()

    def start(self, pool: Any, record: ImportRecord, path: Path) -> asyncio.Task[ImportOutcome]:
        """Run the import from `path` (an uploaded copy: deleted once imported)."""
        task = self._tasks.get(record.import_id)
        if task is None or task.done():
            task = asyncio.create_task(self._run(pool, record, path), name=f"import-{record.import_id}")
            self._tasks[record.import_id] = task
        return task

    async def _run(self, pool: Any, record: ImportRecord, path: Path) -> ImportOutcome:
        try:
            outcome = await run_import(
                pool, record, path, self._seg, self._chunk_rows, stopping=self._stopping
            )
        except Exception:
            log.exception(
                "import failed; it resumes when restarted", extra={"import_id": str(record.import_id)}
            )
            raise
        if outcome.record.status == "completed":
            # Uploaded files hold personal data: kept only until they are imported.
            await asyncio.to_thread(remove_file, path)
        return outcome

    async def resume_and_serve(self, pool: Any, stopping: asyncio.Event) -> None:
        """At start-up, resume uploads a previous process left running; at shutdown, stop cleanly."""
        async with pool.acquire() as conn:
            pending = await repository.running_uploads(conn)
        for record in pending:
            if record.stored_path and await asyncio.to_thread(Path(record.stored_path).exists):
                self.start(pool, record, Path(record.stored_path))
        await stopping.wait()
        self._stopping.set()
        running = [t for t in self._tasks.values() if not t.done()]
        if running:
            await asyncio.wait(running, timeout=25)


async def accept_upload(
    pool: Any,
    runner: ImportRunner,
    body: AsyncIterator[bytes],
    *,
    encoding: str,
    file_name: str | None,
    settings: IntakeSettings,
    seg: Segmentation,
    wait: bool,
) -> ImportOutcome:
    """Store an uploaded file and import it in the background (or, with `wait`, right away).

    The same content uploaded before answers with the first import (replayed) and is not kept.
    """
    facts = await store_upload(body, settings.import_dir, settings.max_import_bytes, encoding)
    try:
        record = await register_import(pool, facts, encoding, seg, source="upload", file_name=file_name)
    except Invalid:
        await asyncio.to_thread(remove_file, facts.path)
        raise
    if record.status == "completed":
        await asyncio.to_thread(remove_file, facts.path)
        return ImportOutcome(record, replayed=True)
    task = runner.start(pool, record, facts.path)
    if wait:
        # Shielded: a client that hangs up does not cancel the import.
        return await asyncio.shield(task)
    return ImportOutcome(record, replayed=False)


async def store_upload(
    body: AsyncIterator[bytes], directory: Path, max_bytes: int, encoding: str
) -> FileFacts:
    """Stream an uploaded file to disk while hashing it: never held in memory whole."""
    upload = await asyncio.to_thread(_Upload, directory)
    try:
        async for piece in body:
            if upload.size + len(piece) > max_bytes:
                raise PayloadTooLarge(f"the file is larger than {max_bytes} bytes", "body")
            await asyncio.to_thread(upload.write, piece)
        if upload.size == 0:
            raise Invalid("the file is empty: expected a header row", "body")
        return await asyncio.to_thread(upload.keep, encoding)
    finally:
        await asyncio.to_thread(upload.discard)


class _Upload:
    """A file being received: written under a temporary name, renamed by its hash when complete."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._path = directory / f"upload-{uuid.uuid4().hex}.partial"
        self._file = self._path.open("wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, piece: bytes) -> None:
        self._digest.update(piece)
        self._file.write(piece)
        self.size += len(piece)

    def keep(self, encoding: str) -> FileFacts:
        self._file.close()
        sha256 = self._digest.hexdigest()
        final = self._directory / f"{sha256}.{encoding}.csv"
        self._path.replace(final)
        return FileFacts(final, sha256, self.size)

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class PayloadTooLarge(Invalid):
    status_code = 413
