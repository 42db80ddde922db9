"""All of intake's SQL. Functions take a connection; the caller owns the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.intake.csv_format import STAGE_COLUMNS, RowProblem
from services.intake.lifecycle import AccountState
from services.intake.models import AccountSnapshot
from shared.events.envelope import CONTENT_TYPE, SCHEMA_VERSION, SPEC_VERSION
from shared.events.payloads import Address, ContactDetails, CustomerFlags, DelinquencyPayload, GeoPoint
from shared.outbox import BUNDLE

# Every snapshot write (batch or file chunk) takes this lock first. Applies are short, and
# serialising them keeps each account's diff against its true last state and the outbox ids
# in commit order (the relay publishes in id order). Per-account locks would need one lock
# table slot per account: a 50,000-row batch would exhaust max_locks_per_transaction.
# The one exception: the pipelined import (file_import._run_chunks) applies two chunks with
# disjoint accounts at once, each holding this lock in shared mode; only one import at a time
# may do that (_PIPELINE_LOCK, a session lock), so shared holders never share an account.
_APPLY_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('fieldcollect.intake.apply', 0))"
_APPLY_LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtextextended('fieldcollect.intake.apply', 0))"
_PIPELINE_LOCK = "hashtextextended('fieldcollect.intake.pipeline', 0)"


async def lock_apply(conn: asyncpg.Connection, shared: bool = False) -> None:
    """Every apply takes this first; `shared` only for a chunk of the pipelined import."""
    await conn.execute(_APPLY_LOCK_SHARED if shared else _APPLY_LOCK)


async def try_lock_pipeline(conn: asyncpg.Connection) -> bool:
    """The right to apply chunks two at a time (one import at a time has it): a session lock."""
    return bool(await conn.fetchval(f"SELECT pg_try_advisory_lock({_PIPELINE_LOCK})"))


async def unlock_pipeline(conn: asyncpg.Connection) -> None:
    await conn.execute(f"SELECT pg_advisory_unlock({_PIPELINE_LOCK})")


# --- the lifecycle state (JSON batch path) --------------------------------------------


async def load_states(conn: asyncpg.Connection, account_ids: Sequence[str]) -> dict[str, AccountState]:
    rows = await conn.fetch(
        "SELECT account_id, as_of, delinquent, dpd_bucket, outstanding, overdue_amount,"
        " last_payment_date, flags, customer_name, phone, language, time_zone, address_line1,"
        " address_city, address_region, address_postal_code, address_country, lat, lon"
        " FROM accounts WHERE account_id = ANY($1::text[])",
        list(set(account_ids)),
    )
    return {r["account_id"]: _state(r) for r in rows}


def _state(row: asyncpg.Record) -> AccountState:
    return AccountState(
        account_id=row["account_id"],
        as_of=row["as_of"],
        delinquent=row["delinquent"],
        dpd_bucket=row["dpd_bucket"],
        outstanding=row["outstanding"],
        overdue_amount=row["overdue_amount"],
        last_payment_date=row["last_payment_date"],
        flags=CustomerFlags(**row["flags"]),
        contact=_contact(row),
        address=_address(row),
    )


def _contact(row: asyncpg.Record) -> ContactDetails | None:
    if row["language"] is None:  # stored before contact data was kept
        return None
    return ContactDetails(
        name=row["customer_name"], phone=row["phone"], language=row["language"], time_zone=row["time_zone"]
    )


def _address(row: asyncpg.Record) -> Address | None:
    if row["address_line1"] is None:
        return None
    lat, lon = row["lat"], row["lon"]
    return Address(
        line1=row["address_line1"],
        city=row["address_city"],
        region=row["address_region"],
        postal_code=row["address_postal_code"],
        country=row["address_country"],
        location=GeoPoint(lat=lat, lon=lon) if lat is not None and lon is not None else None,
    )


@dataclass(frozen=True, slots=True)
class AccountRow:
    """What a snapshot leaves in `accounts`: its lifecycle state and the listed facts."""

    snapshot: AccountSnapshot
    state: AccountState
    priority_score: float
    segmentation_version: str


_STATE_COLUMNS = (
    "customer_id, as_of, delinquent, dpd_bucket, outstanding, overdue_amount,"
    " last_payment_date, flags, product, currency, status, principal, installment_amount,"
    " last_payment_amount, dpd, priority_score, segmentation_version, customer_name, phone,"
    " language, time_zone, address_line1, address_city, address_region, address_postal_code,"
    " address_country, lat, lon"
)
_ACCOUNT_COLUMNS = "account_id, " + _STATE_COLUMNS
_EXCLUDED = ", ".join("EXCLUDED." + c.strip() for c in _STATE_COLUMNS.split(","))
# Rows identical to what is stored are not rewritten (a re-sent snapshot costs no write).
_ACCOUNT_UPSERT = f"""
    ON CONFLICT (account_id) DO UPDATE SET ({_STATE_COLUMNS}, updated_at) = ({_EXCLUDED}, now())
    WHERE (accounts.{_STATE_COLUMNS.replace(", ", ", accounts.")}) IS DISTINCT FROM ({_EXCLUDED})
"""


async def save_accounts(conn: asyncpg.Connection, rows: Sequence[AccountRow]) -> None:
    """Upsert in one round trip."""
    if not rows:
        return
    columns: list[list[Any]] = [[] for _ in range(29)]
    for r in rows:
        snap, state, c, a = r.snapshot, r.state, r.snapshot.customer, r.snapshot.address
        values = (
            state.account_id,
            snap.customer_id,
            state.as_of,
            state.delinquent,
            state.dpd_bucket,
            state.outstanding,
            state.overdue_amount,
            state.last_payment_date,
            state.flags.model_dump(),
            snap.product,
            snap.currency,
            snap.status,
            snap.principal,
            snap.installment_amount,
            snap.last_payment_amount,
            snap.dpd,
            r.priority_score,
            r.segmentation_version,
            c.name,
            c.phone,
            c.language,
            c.time_zone,
            a.line1,
            a.city,
            a.region,
            a.postal_code,
            a.country,
            a.lat,
            a.lon,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    await conn.execute(
        f"""
        INSERT INTO accounts ({_ACCOUNT_COLUMNS})
        SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::bool[], $5::text[],
            $6::numeric[], $7::numeric[], $8::date[], $9::jsonb[], $10::text[], $11::text[],
            $12::text[], $13::numeric[], $14::numeric[], $15::numeric[], $16::int[],
            $17::float8[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[],
            $23::text[], $24::text[], $25::text[], $26::text[], $27::text[], $28::float8[],
            $29::float8[])
        {_ACCOUNT_UPSERT}
        """,
        *columns,
    )


async def record_ignored(conn: asyncpg.Connection, rows: Sequence[tuple[str, Any, Any]], origin: str) -> None:
    """Out-of-order snapshots: (account id, snapshot as-of, known as-of), with where they came from."""
    await conn.executemany(
        "INSERT INTO ignored_snapshots (account_id, snapshot_as_of, known_as_of, source, reason)"
        " VALUES ($1, $2, $3, $4, 'older than the last known snapshot')",
        [(*row, origin) for row in rows],
    )


async def claim_batch(conn: asyncpg.Connection, key: str, request_hash: str) -> dict[str, Any] | None:
    """Reserve an idempotency key; returns the earlier answer when the key was used."""
    inserted = await conn.fetchval(
        "INSERT INTO batches (idempotency_key, request_hash, result) VALUES ($1, $2, '{}')"
        " ON CONFLICT DO NOTHING RETURNING true",
        key,
        request_hash,
    )
    if inserted:
        return None
    row = await conn.fetchrow("SELECT request_hash, result FROM batches WHERE idempotency_key = $1", key)
    return {"request_hash": row["request_hash"], "result": row["result"]}


async def store_batch_result(conn: asyncpg.Connection, key: str, result: dict[str, Any]) -> None:
    await conn.execute("UPDATE batches SET result = $2 WHERE idempotency_key = $1", key, result)


# --- file imports ---------------------------------------------------------------------

_STAGE_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS import_stage (
    row_no bigint NOT NULL, account_id text NOT NULL, customer_id text NOT NULL,
    product text NOT NULL, currency text NOT NULL, as_of date NOT NULL, status text NOT NULL,
    principal numeric(18, 2) NOT NULL, outstanding numeric(18, 2) NOT NULL,
    overdue_amount numeric(18, 2) NOT NULL, installment_amount numeric(18, 2),
    last_payment_date date, last_payment_amount numeric(18, 2), customer_name text, phone text,
    language text NOT NULL, time_zone text NOT NULL, address_line1 text NOT NULL,
    address_city text NOT NULL, address_region text, address_postal_code text,
    address_country text NOT NULL, lat float8, lon float8, cease_contact bool NOT NULL,
    dispute bool NOT NULL, deceased bool NOT NULL, bankruptcy bool NOT NULL,
    vulnerable bool NOT NULL, dpd integer NOT NULL, delinquent bool NOT NULL,
    dpd_bucket text NOT NULL, priority_score float8 NOT NULL, priority_factors text NOT NULL
) ON COMMIT DELETE ROWS
"""

# The CloudEvents headers of events built in SQL, in Envelope.headers() order
# (tests/unit/intake/test_sql_events.py holds the two together).
HEADER_KEYS = (
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "ce_dataschema",
    "content-type",
    "traceparent",
    "ce_correlationid",
)


# A chunk's events go to the outbox as bundles (shared/outbox.py): one row per BUNDLE_ROWS
# file rows, one line per event. Per event only the account, id, type, data schema and span
# vary; the template holds the rest ($4, bound once per chunk). "\x00<n>" is field n of a line.
BUNDLE_ROWS = 1000
_BUNDLE_FIELDS = {"ce_subject": 0, "ce_id": 1, "ce_type": 2, "ce_dataschema": 3, "traceparent": 4}


def bundle_template(source: str, time: str, correlation_id: str) -> tuple[list[str], list[bytes]]:
    """The bundle's header keys and values: the CloudEvents headers in Envelope order."""
    constant = {
        "ce_specversion": SPEC_VERSION,
        "ce_source": source,
        "ce_time": time,
        "content-type": CONTENT_TYPE,
        "ce_correlationid": correlation_id,
    }
    values = [
        f"\x00{_BUNDLE_FIELDS[k]}".encode() if k in _BUNDLE_FIELDS else constant[k].encode()
        for k in HEADER_KEYS
    ]
    return [BUNDLE, *HEADER_KEYS], values  # the event count goes first, in SQL


# The line of one event: account, id, type, data schema, traceparent (the span id taken from
# the event id's random digits; $5 is "00-<trace id>-"), payload.
_LINE_SQL = f"""concat(e.account_id, E'\\t', e.event_id, E'\\t', e.type,
        E'\\turn:fieldcollect:', e.type, ':v{SCHEMA_VERSION}',
        E'\\t', $5::text, right(e.event_id::text, 12), substr(e.event_id::text, 20, 4), '-01',
        E'\\t', e.payload, E'\\n')"""


_APPLY_STAGE = """
-- The two events a nightly file publishes by the million are written as text (about twice
-- as fast as json_build_object): ids, codes and numbers are validated before they are
-- staged and go in as they are; dates and free text go through to_json (ISO dates whatever
-- the DateStyle, escaped text). The joins probe the accounts index row by row (_CHUNK_PLAN).
WITH diff AS MATERIALIZED (
    -- Each staged row with its account's last state and what changed, materialized once
    -- (every CTE below reads it; out-of-order rows are marked `stale` and only `ignored`
    -- takes them).
    SELECT j.*,
        known AND as_of < prev_as_of AS stale,
        delinquent AND NOT (known AND prev_delinquent) AS opens,
        known AND prev_delinquent AS was_delinquent,
        last_payment_date IS NOT NULL
            AND (prev_payment_date IS NULL OR last_payment_date > prev_payment_date) AS newer_payment,
        known AND NOT contact_changed AND NOT address_changed AND NOT flags_changed
            AND (delinquent, dpd_bucket, outstanding, overdue_amount, last_payment_date)
            IS NOT DISTINCT FROM (prev_delinquent, prev_bucket, prev_outstanding, prev_overdue,
                                  prev_payment_date) AS unchanged
    FROM (
        SELECT s.*, a.known IS NOT NULL AS known, a.prev_as_of, a.prev_delinquent, a.prev_bucket,
               a.prev_outstanding, a.prev_overdue, a.prev_payment_date, a.prev_flags,
               a.known IS NOT NULL AND (s.customer_name, s.phone, s.language, s.time_zone)
                   IS DISTINCT FROM a.prev_contact AS contact_changed,
               a.known IS NOT NULL AND (s.address_line1, s.address_city, s.address_region,
                   s.address_postal_code, s.address_country, s.lat, s.lon)
                   IS DISTINCT FROM a.prev_address AS address_changed,
               __FLAGS__ AS flags,
               a.known IS NOT NULL AND __FLAGS__ <> a.prev_flags AS flags_changed
        FROM import_stage s
        LEFT JOIN (
            SELECT account_id, true AS known, as_of AS prev_as_of, delinquent AS prev_delinquent,
                   dpd_bucket AS prev_bucket, outstanding AS prev_outstanding,
                   overdue_amount AS prev_overdue, last_payment_date AS prev_payment_date,
                   flags AS prev_flags,
                   (customer_name, phone, language, time_zone) AS prev_contact,
                   (address_line1, address_city, address_region, address_postal_code,
                    address_country, lat, lon) AS prev_address
            FROM accounts
        ) a ON a.account_id = s.account_id
        OFFSET 0  -- a subquery of its own: each column computed once per row, not per reference
    ) j
),
ignored AS (
    INSERT INTO ignored_snapshots (account_id, snapshot_as_of, known_as_of, source, reason, row_no)
    SELECT account_id, as_of, prev_as_of, $1, 'older than the last known snapshot', row_no
    FROM diff WHERE stale
    RETURNING 1
),
moved AS MATERIALIZED (
    -- The rows that publish something: all of a first load, a few percent of a next day.
    SELECT * FROM diff WHERE NOT stale AND NOT unchanged AND (flags_changed OR opens OR was_delinquent)
),
events AS (
    SELECT row_no, 1 AS seq, account_id, 'customer.flags_changed' AS type, json_build_object(
        'type', 'customer.flags_changed', 'account_id', account_id, 'customer_id', customer_id,
        'flags', flags,
        'changed', (SELECT array_agg(n.key ORDER BY n.key) FROM jsonb_each(flags) n
                    JOIN jsonb_each(prev_flags) o ON o.key = n.key WHERE n.value <> o.value),
        'reason', 'core banking snapshot')::text AS payload
    FROM moved WHERE flags_changed
    UNION ALL
    SELECT row_no, 2, account_id, 'delinquency.opened', concat(
        '{"type":"delinquency.opened","account_id":"', account_id,
        '","customer_id":"', customer_id, '","product":', to_json(product),
        ',"currency":"', currency, '","as_of":', to_json(as_of), ',"principal":"', principal,
        '","outstanding":"', outstanding, '","overdue_amount":"', overdue_amount,
        '","dpd":', dpd, ',"dpd_bucket":', to_json(dpd_bucket),
        ',"priority_score":', priority_score, ',"priority_factors":', priority_factors,
        ',"segmentation_version":', to_json($2::text),
        ',"contact":', __CONTACT__, ',"address":', __ADDRESS__, ',"flags":', flags, '}')
    FROM moved WHERE opens
    UNION ALL
    SELECT row_no, 3, account_id, 'payment.received', json_build_object(
        'type', 'payment.received', 'account_id', account_id, 'as_of', as_of,
        'amount', (CASE WHEN newer_payment AND coalesce(last_payment_amount, 0) <> 0
                        THEN last_payment_amount
                        ELSE greatest(prev_overdue - overdue_amount, 0) END)::text,
        'currency', currency, 'overdue_amount_after', overdue_amount::text,
        'paid_on', CASE WHEN newer_payment THEN last_payment_date END)::text
    FROM moved WHERE was_delinquent AND (newer_payment OR overdue_amount < prev_overdue)
    UNION ALL
    SELECT row_no, 4, account_id, 'delinquency.cured', json_build_object(
        'type', 'delinquency.cured', 'account_id', account_id, 'as_of', as_of,
        'reason', CASE WHEN status = 'closed' THEN 'closed' ELSE 'current' END)::text
    FROM moved WHERE was_delinquent AND NOT delinquent
    UNION ALL
    SELECT row_no, 4, account_id, 'delinquency.updated', concat(
        '{"type":"delinquency.updated","account_id":"', account_id, '","as_of":', to_json(as_of),
        ',"outstanding":"', outstanding, '","overdue_amount":"', overdue_amount,
        '","dpd":', dpd, ',"dpd_bucket":', to_json(dpd_bucket),
        ',"priority_score":', priority_score, ',"priority_factors":', priority_factors,
        ',"segmentation_version":', to_json($2::text),
        ',"contact":', CASE WHEN contact_changed THEN __CONTACT__ ELSE 'null' END,
        ',"address":', CASE WHEN address_changed THEN __ADDRESS__ ELSE 'null' END, '}')
    FROM moved WHERE was_delinquent AND delinquent
        AND ((dpd_bucket, outstanding, overdue_amount) IS DISTINCT FROM
             (prev_bucket, prev_outstanding, prev_overdue) OR contact_changed OR address_changed)
),
published AS (
    -- One outbox row per BUNDLE_ROWS file rows ($6), its events in file order.
    INSERT INTO outbox (topic, key, value, header_keys, header_values)
    SELECT '__TOPIC__', NULL, convert_to(string_agg(__LINE__, '' ORDER BY e.row_no, e.seq), 'UTF8'),
           $3::text[], convert_to(count(*)::text, 'UTF8') || $4::bytea[]
    FROM (SELECT events.*, gen_random_uuid() AS event_id, row_no / $6::bigint AS bundle FROM events) e
    GROUP BY e.bundle ORDER BY e.bundle
    RETURNING convert_from(header_values[1], 'UTF8')::bigint AS events
),
updated AS (
    UPDATE accounts SET (customer_id, as_of, delinquent, dpd_bucket, outstanding, overdue_amount,
            last_payment_date, flags, product, currency, status, principal, installment_amount,
            last_payment_amount, dpd, priority_score, segmentation_version, customer_name, phone,
            language, time_zone, address_line1, address_city, address_region, address_postal_code,
            address_country, lat, lon, updated_at) =
        (d.customer_id, d.as_of, d.delinquent, d.dpd_bucket, d.outstanding, d.overdue_amount,
         d.last_payment_date, d.flags, d.product, d.currency, d.status, d.principal,
         d.installment_amount, d.last_payment_amount, d.dpd, d.priority_score, $2::text,
         d.customer_name, d.phone, d.language, d.time_zone, d.address_line1, d.address_city,
         d.address_region, d.address_postal_code, d.address_country, d.lat, d.lon, now())
    -- Only the columns written: UPDATE ... FROM keeps a copy of each row of d it joins.
    FROM (SELECT account_id, customer_id, as_of, delinquent, dpd_bucket, outstanding, overdue_amount,
                 last_payment_date, flags, product, currency, status, principal, installment_amount,
                 last_payment_amount, dpd, priority_score, customer_name, phone, language, time_zone,
                 address_line1, address_city, address_region, address_postal_code, address_country,
                 lat, lon
          FROM diff WHERE known AND NOT stale OFFSET 0) d
    WHERE accounts.account_id = d.account_id
    RETURNING 1
),
inserted AS (
    INSERT INTO accounts (__ACCOUNT_COLUMNS__)
    SELECT account_id, customer_id, as_of, delinquent, dpd_bucket, outstanding, overdue_amount,
           last_payment_date, flags, product, currency, status, principal, installment_amount,
           last_payment_amount, dpd, priority_score, $2::text, customer_name, phone, language,
           time_zone, address_line1, address_city, address_region, address_postal_code,
           address_country, lat, lon
    FROM diff WHERE NOT known
    RETURNING 1
)
SELECT (SELECT count(*) FROM ignored) AS out_of_order,
       (SELECT coalesce(sum(events), 0) FROM published) AS events,
       (SELECT count(*) FROM diff WHERE unchanged AND NOT stale) AS unchanged,
       (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted) AS written
"""


# The contact and address objects of opened and updated events, as JSON text.
_CONTACT_SQL = """concat('{"name":', coalesce(to_json(customer_name)::text, 'null'),
        ',"phone":', coalesce(to_json(phone)::text, 'null'),
        ',"language":"', language, '","time_zone":"', time_zone, '"}')"""
_ADDRESS_SQL = """concat('{"line1":', to_json(address_line1), ',"city":', to_json(address_city),
        ',"region":', coalesce(to_json(address_region)::text, 'null'),
        ',"postal_code":', coalesce(to_json(address_postal_code)::text, 'null'),
        ',"country":"', address_country, '","location":',
        CASE WHEN lat IS NOT NULL AND lon IS NOT NULL
             THEN concat('{"lat":', lat, ',"lon":', lon, '}') ELSE 'null' END, '}')"""


# The stored flags (jsonb) of a staged row: the five flags of the file and `care_hold`, which
# follow-up's care referrals set and a file keeps. There are 64 such objects: picked from a
# constant array by their bits instead of built per row (jsonb_build_object was a tenth of a
# next day's statement). The same jsonb values (tests/integration/intake/test_file_import.py).
FLAG_NAMES = ("cease_contact", "dispute", "deceased", "bankruptcy", "vulnerable", "care_hold")


def _flags_sql() -> str:
    objects = [
        "'{"
        + ", ".join(f'"{name}": {str(bool(bits >> i & 1)).lower()}' for i, name in enumerate(FLAG_NAMES))
        + "}'"
        for bits in range(2 ** len(FLAG_NAMES))
    ]
    bits = " + ".join(f"{1 << i} * s.{name}::int" for i, name in enumerate(FLAG_NAMES[:-1]))
    care_hold = f"CASE WHEN coalesce((a.prev_flags ->> 'care_hold')::boolean, false) THEN {1 << len(FLAG_NAMES) - 1} ELSE 0 END"
    return f"(ARRAY[{', '.join(objects)}]::jsonb[])[1 + {bits} + {care_hold}]"


def _apply_stage_sql() -> str:
    """The lifecycle of lifecycle.py as one set-based statement over a staged chunk.

    $1 origin recorded with ignored snapshots, $2 segmentation version, $3 and $4 the bundle
    template's header keys and values, $5 the traceparent's "00-<trace id>-", $6 BUNDLE_ROWS.
    A chunk holds each account at most once.
    """
    return (
        _APPLY_STAGE.replace("__TOPIC__", DelinquencyPayload.topic)
        .replace("__LINE__", _LINE_SQL)
        .replace("__CONTACT__", _CONTACT_SQL)
        .replace("__ADDRESS__", _ADDRESS_SQL)
        .replace("__FLAGS__", _flags_sql())
        .replace("__ACCOUNT_COLUMNS__", _ACCOUNT_COLUMNS)
    )


@dataclass(frozen=True, slots=True)
class ChunkResult:
    out_of_order: int
    events: int
    unchanged: int


# A chunk is small next to `accounts`: probe its index row by row. Without statistics on
# the temp table the planner may pick a hash join that scans every account for each chunk.
# Forcing that raises the estimated cost past JIT's threshold, and compiling this statement
# takes longer than running it (seconds per chunk): no JIT.
# Bundles are megabytes of JSON: lz4 compresses them several times faster than pglz.
_CHUNK_PLAN = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off;"
    " SET LOCAL default_toast_compression = lz4; SET LOCAL work_mem = '64MB'"
)


class StagedApply:
    """Applies staged chunks on one connection (its temp table and prepared statement)."""

    def __init__(self, conn: asyncpg.Connection, source: str) -> None:
        self.conn = conn
        self._conn = conn
        self._source = source
        self._sql = _apply_stage_sql()

    async def prepare(self) -> None:
        await self._conn.execute(_STAGE_TABLE)

    async def stage(self, csv_data: bytes) -> None:
        """Inside the caller's transaction: COPY the chunk's rows into the staging table."""
        await self._conn.copy_to_table(
            "import_stage", source=memoryview(csv_data), columns=list(STAGE_COLUMNS), format="csv"
        )

    async def apply(self, origin: str, trace_id: str, correlation_id: str, seg_version: str) -> ChunkResult:
        """After `stage`, in the same transaction: diff, publish and save the chunk."""
        await self._conn.execute(_CHUNK_PLAN)
        keys, values = bundle_template(self._source, datetime.now(UTC).isoformat(), correlation_id)
        row = await self._conn.fetchrow(
            self._sql, origin, seg_version, keys, values, f"00-{trace_id}-", BUNDLE_ROWS
        )
        return ChunkResult(row["out_of_order"], row["events"], row["unchanged"])


@dataclass(frozen=True, slots=True)
class ImportRecord:
    import_id: uuid.UUID
    file_sha256: str
    encoding: str
    file_name: str | None
    file_bytes: int
    source: str
    stored_path: str | None
    status: str
    segmentation_version: str
    trace_id: str
    high_water_row: int
    high_water_line: int
    high_water_byte: int
    rows_accepted: int
    rows_rejected: int
    rows_unchanged: int
    rows_out_of_order: int
    events_staged: int
    chunks_committed: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None


_IMPORT_COLUMNS = ", ".join(ImportRecord.__slots__)  # type: ignore[attr-defined]


async def create_import(
    conn: asyncpg.Connection,
    *,
    file_sha256: str,
    encoding: str,
    file_name: str | None,
    file_bytes: int,
    source: str,
    stored_path: str | None,
    segmentation_version: str,
) -> tuple[ImportRecord, bool]:
    """The import of this file (content and encoding), created if new; (record, created)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO imports (import_id, file_sha256, encoding, file_name, file_bytes, source,
                             stored_path, status, segmentation_version, trace_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9)
        ON CONFLICT (file_sha256, encoding) DO NOTHING
        RETURNING {_IMPORT_COLUMNS}
        """,
        uuid.uuid4(),
        file_sha256,
        encoding,
        file_name,
        file_bytes,
        source,
        stored_path,
        segmentation_version,
        uuid.uuid4().hex,
    )
    if row is not None:
        return ImportRecord(**row), True
    row = await conn.fetchrow(
        f"SELECT {_IMPORT_COLUMNS} FROM imports WHERE file_sha256 = $1 AND encoding = $2",
        file_sha256,
        encoding,
    )
    return ImportRecord(**row), False


async def get_import(conn: asyncpg.Connection, import_id: uuid.UUID) -> ImportRecord | None:
    row = await conn.fetchrow(f"SELECT {_IMPORT_COLUMNS} FROM imports WHERE import_id = $1", import_id)
    return ImportRecord(**row) if row else None


async def recent_imports(conn: asyncpg.Connection, limit: int) -> list[ImportRecord]:
    rows = await conn.fetch(
        f"SELECT {_IMPORT_COLUMNS} FROM imports ORDER BY started_at DESC, import_id LIMIT $1", limit
    )
    return [ImportRecord(**r) for r in rows]


async def running_uploads(conn: asyncpg.Connection) -> list[ImportRecord]:
    rows = await conn.fetch(
        f"SELECT {_IMPORT_COLUMNS} FROM imports WHERE status = 'running' AND source = 'upload'"
        " ORDER BY started_at"
    )
    return [ImportRecord(**r) for r in rows]


async def try_lock_import(conn: asyncpg.Connection, import_id: uuid.UUID) -> bool:
    """A session lock: one process runs an import at a time; it goes when the session does."""
    return bool(
        await conn.fetchval(
            "SELECT pg_try_advisory_lock(hashtextextended('fieldcollect.intake.import:' || $1::uuid::text, 0))",
            import_id,
        )
    )


async def unlock_import(conn: asyncpg.Connection, import_id: uuid.UUID) -> None:
    await conn.execute(
        "SELECT pg_advisory_unlock(hashtextextended('fieldcollect.intake.import:' || $1::uuid::text, 0))",
        import_id,
    )


async def record_rejections(
    conn: asyncpg.Connection, import_id: uuid.UUID, problems: Sequence[RowProblem]
) -> None:
    if not problems:
        return
    records, seq, last_row = [], 0, None
    for p in problems:
        seq = seq + 1 if p.row == last_row else 0
        last_row = p.row
        records.append((import_id, p.row, p.line, p.column, p.reason, seq))
    await conn.copy_records_to_table(
        "import_rejections",
        records=records,
        columns=["import_id", "row_no", "line_no", "column_name", "reason", "seq"],
    )


@dataclass(frozen=True, slots=True)
class ChunkProgress:
    rows: int
    line: int
    offset: int
    accepted: int
    rejected: int
    unchanged: int
    out_of_order: int
    events: int
    completed: bool


async def advance_import(conn: asyncpg.Connection, import_id: uuid.UUID, p: ChunkProgress) -> None:
    """Move the high-water mark in the chunk's own transaction: committed means skipped on resume."""
    await conn.execute(
        """
        UPDATE imports SET high_water_row = $2, high_water_line = $3, high_water_byte = $4,
            rows_accepted = rows_accepted + $5, rows_rejected = rows_rejected + $6,
            rows_unchanged = rows_unchanged + $7, rows_out_of_order = rows_out_of_order + $8,
            events_staged = events_staged + $9, chunks_committed = chunks_committed + 1,
            updated_at = now(),
            status = CASE WHEN $10 THEN 'completed' ELSE status END,
            finished_at = CASE WHEN $10 THEN now() ELSE finished_at END
        WHERE import_id = $1
        """,
        import_id,
        p.rows,
        p.line,
        p.offset,
        p.accepted,
        p.rejected,
        p.unchanged,
        p.out_of_order,
        p.events,
        p.completed,
    )


async def rejected_rows(
    conn: asyncpg.Connection, import_id: uuid.UUID, after_row: int, limit: int
) -> list[RowProblem]:
    rows = await conn.fetch(
        "SELECT row_no, line_no, column_name, reason FROM import_rejections"
        " WHERE import_id = $1 AND row_no > $2 ORDER BY row_no, seq LIMIT $3",
        import_id,
        after_row,
        limit,
    )
    return [RowProblem(r["row_no"], r["line_no"], r["column_name"], r["reason"]) for r in rows]


async def rejection_reasons(
    conn: asyncpg.Connection, import_id: uuid.UUID, limit: int = 20
) -> list[dict[str, Any]]:
    """The most common (column, reason) pairs: the summary of a rejected-rows report."""
    rows = await conn.fetch(
        "SELECT column_name, reason, count(*) AS n FROM import_rejections WHERE import_id = $1"
        " GROUP BY column_name, reason ORDER BY n DESC, column_name LIMIT $2",
        import_id,
        limit,
    )
    return [{"column": r["column_name"], "reason": r["reason"], "rows": r["n"]} for r in rows]


# --- the accounts API -----------------------------------------------------------------

_LISTED = (
    "account_id, customer_id, product, currency, status, as_of, delinquent, dpd, dpd_bucket,"
    " principal, outstanding, overdue_amount, installment_amount, last_payment_date,"
    " last_payment_amount, priority_score, segmentation_version, flags, customer_name, phone,"
    " language, time_zone, address_line1, address_city, address_region, address_postal_code,"
    " address_country, lat, lon, updated_at"
)


async def get_account(conn: asyncpg.Connection, account_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_LISTED} FROM accounts WHERE account_id = $1", account_id)


async def list_accounts(
    conn: asyncpg.Connection, after: str, limit: int, dpd_bucket: str | None, delinquent: bool | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""
        SELECT {_LISTED} FROM accounts
        WHERE account_id > $1 AND ($3::text IS NULL OR dpd_bucket = $3)
          AND ($4::bool IS NULL OR delinquent = $4)
        ORDER BY account_id LIMIT $2
        """,
        after,
        limit,
        dpd_bucket,
        delinquent,
    )
