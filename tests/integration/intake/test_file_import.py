"""Daily files over HTTP: encodings, the rejected-rows report, re-imports, refusals."""

import asyncio
import logging
import uuid

import httpx
import pytest

from services.intake.csv_format import COLUMNS
from shared.logging import parse_traceparent
from tests.conftest import eventually
from tests.integration.intake.conftest import Intake, types
from tests.unit.intake.files import csv_bytes, csv_text, row

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> str:
    return f"F{uuid.uuid4().hex[:8].upper()}"


async def report(intake: Intake, import_id: str, **params) -> dict:
    response = await intake.http.get(
        f"/v1/imports/{import_id}/rejected-rows", params=params, headers=intake.auth("ops")
    )
    assert response.status_code == 200, response.text
    return response.json()


async def outbox_rows(intake: Intake, prefix: str) -> int:
    async with intake.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE convert_from(key, 'UTF8') LIKE $1", prefix + "%"
        )


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", True), ("utf-8", False), ("gb18030", False), ("gbk", False)]
)
async def test_a_file_in_each_encoding_is_imported_and_published(
    intake: Intake, prefix: str, encoding, bom
) -> None:
    rows = [
        row(f"{prefix}-{i}", customer_name=f"张伟{i}", address_line1="深圳市南山区科技园 1号")
        for i in range(3)
    ]
    response = await intake.upload(csv_bytes(rows, encoding, bom), encoding)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["status"] == "completed" and answer["rows_accepted"] == 3 and answer["rows_rejected"] == 0
    assert answer["encoding"] == encoding and answer["replayed"] is False
    events = await intake.events(prefix)
    assert types(events) == ["delinquency.opened"] * 3
    assert sorted(e.data.contact.name for e in events) == ["张伟0", "张伟1", "张伟2"]
    assert {e.correlation_id for e in events} == {answer["import_id"]}
    traces = [parse_traceparent(e.traceparent) for e in events]
    assert all(traces) and len({t.trace_id for t in traces}) == 1, "one trace per import"
    assert len({t.parent_span_id for t in traces}) == 3


async def test_reimporting_a_file_is_a_no_op(intake: Intake, prefix: str) -> None:
    data = csv_bytes([row(f"{prefix}-1"), row(f"{prefix}-2")])
    first = await intake.upload(data)
    assert first.status_code == 201
    assert len(await intake.events(prefix)) == 2
    again = await intake.upload(data)
    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True and again.json()["import_id"] == first.json()["import_id"]
    latest = (await intake.http.get("/v1/imports", params={"limit": 5}, headers=intake.auth("ops"))).json()
    assert first.json()["import_id"] in [i["import_id"] for i in latest["imports"]]
    assert await outbox_rows(intake, prefix) == 0
    assert len(await intake.events(prefix)) == 2


async def test_malformed_rows_make_a_report_and_the_rest_is_committed(intake: Intake, prefix: str) -> None:
    phone = "+8613955554444"
    rows = [
        row(f"{prefix}-01"),
        row(f"{prefix}-02", principal="twelve"),
        row(f"{prefix}-03", overdue_amount="-100.00"),
        row("", customer_id=""),
        row(f"{prefix}-05", customer_name="n" * 500),
        row("x'; DROP TABLE accounts;--"),
        row(f"{prefix}-07", customer_name="Robert'); DROP TABLE accounts;--"),
        row(f"{prefix}-08", days_past_due="3.5", customer_phone=phone + "x"),
        row(f"{prefix}-09", overdue_amount="9999.00"),
        row(f"{prefix}-10"),
    ]
    text = csv_text(rows) + f"{prefix}-11,short,row\n"
    data = text.encode("utf-8") + row_bytes_gbk(f"{prefix}-12")
    response = await intake.upload(data)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert (answer["rows_read"], answer["rows_accepted"], answer["rows_rejected"]) == (12, 3, 9)
    listed = await report(intake, answer["import_id"])
    assert {(r["row"], r["column"]) for r in listed["rows"]} >= {
        (2, "principal"),
        (3, "overdue_amount"),
        (4, "account_id"),
        (4, "customer_id"),
        (5, "customer_name"),
        (6, "account_id"),
        (8, "days_past_due"),
        (8, "customer_phone"),
        (9, "(row)"),
        (11, "(row)"),
        (12, "customer_name"),
    }
    assert all(r["reason"] and r["line"] == r["row"] + 1 for r in listed["rows"])
    encoding_problem = next(r for r in listed["rows"] if r["row"] == 12)
    assert "UTF-8" in encoding_problem["reason"]
    for value in (phone, "DROP TABLE", "twelve", "n" * 50):
        assert value not in str(listed)
    summary = (await intake.http.get(f"/v1/imports/{answer['import_id']}", headers=intake.auth("ops"))).json()
    assert summary["rows_rejected"] == 9 and summary["rejection_reasons"]
    events = await intake.events(prefix)
    assert sorted(e.subject for e in events) == [f"{prefix}-01", f"{prefix}-07", f"{prefix}-10"]
    robert = next(e for e in events if e.subject == f"{prefix}-07")
    assert robert.data.contact.name == "Robert'); DROP TABLE accounts;--"


def row_bytes_gbk(account_id: str) -> bytes:
    values = row(account_id, customer_name="王芳")
    return (",".join(values[c] for c in COLUMNS) + "\n").encode("gbk")


async def test_the_report_pages_by_row(intake: Intake, prefix: str) -> None:
    rows = [row(f"{prefix}-{i}", principal="bad") for i in range(5)]
    answer = (await intake.upload(csv_bytes(rows))).json()
    first = await report(intake, answer["import_id"], limit=2)
    assert [r["row"] for r in first["rows"]] == [1, 2] and first["next_after_row"] == 2
    rest = await report(intake, answer["import_id"], after_row=2, limit=10)
    assert [r["row"] for r in rest["rows"]] == [3, 4, 5] and rest["next_after_row"] is None


async def test_an_upload_runs_in_the_background_when_not_waited_for(intake: Intake, prefix: str) -> None:
    rows = [row(f"{prefix}-{i:03d}") for i in range(400)]
    response = await intake.upload(csv_bytes(rows), wait=False)
    assert response.status_code == 202, response.text
    location = response.headers["Location"]

    async def done() -> dict | None:
        answer = (await intake.http.get(location, headers=intake.auth())).json()
        return answer if answer["status"] == "completed" else None

    answer = await eventually(done, timeout_s=60)
    assert answer["rows_accepted"] == 400 and answer["chunks_committed"] >= 400 // 50
    assert len(await intake.events(prefix)) == 400


@pytest.mark.parametrize(
    ("data", "params", "status", "field"),
    [
        (b"", {}, 422, "body"),
        (b"account_id,customer_id\nA,B\n", {}, 422, "header"),
        (csv_bytes([row("X-1")]), {"encoding": "latin-1"}, 422, "encoding"),
    ],
)
async def test_files_that_cannot_be_read_are_refused_before_anything_is_recorded(
    intake: Intake, data, params, status, field
) -> None:
    async with intake.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM imports")
    response = await intake.http.post(
        "/v1/imports", params=params, content=data, headers={**intake.auth(), "Content-Type": "text/csv"}
    )
    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["field"] == field
    async with intake.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM imports") == before


async def test_only_core_banking_uploads_and_ops_reads(intake: Intake) -> None:
    upload = await intake.http.post("/v1/imports", content=b"x", headers=intake.auth("ops"))
    assert upload.status_code == 403
    unknown = await intake.http.get(f"/v1/imports/{uuid.uuid4()}", headers=intake.auth("ops"))
    assert unknown.status_code == 404
    agent = await intake.http.get(f"/v1/imports/{uuid.uuid4()}", headers=intake.auth("agent"))
    assert agent.status_code == 403


async def test_personal_data_stays_out_of_the_logs(intake: Intake, prefix: str, caplog) -> None:
    name, phone = f"秘密{prefix}", "+8613977776666"
    caplog.set_level(logging.DEBUG)
    rows = [
        row(f"{prefix}-1", customer_name=name, customer_phone=phone),
        row(f"{prefix}-2", customer_phone="bad"),
    ]
    assert (await intake.upload(csv_bytes(rows))).status_code == 201
    batch = await intake.batch(
        [{"account_id": f"{prefix}-3", "customer": {"name": name, "phone": phone}}], prefix
    )
    assert batch.status_code == 422
    await intake.drained()
    await asyncio.sleep(0.1)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records and name not in logged and phone not in logged


async def test_free_text_reaches_the_events_exactly(intake: Intake, prefix: str) -> None:
    """Text fields are escaped on their way into the events' JSON, whatever they hold."""
    name = 'Zoë "Z" O\'Neil \\ back\\slash\ttab, 😀 \u2028'
    line1 = "Room 5\nBlock B, {braces} [brackets] </script>"
    rows = [row(f"{prefix}-1", customer_name=name, address_line1=line1, product='loan "plus"')]
    assert (await intake.upload(csv_bytes(rows))).status_code == 201
    [event] = await intake.events(prefix)
    assert (event.data.contact.name, event.data.address.line1, event.data.product) == (
        name,
        line1,
        'loan "plus"',
    )


async def test_the_service_resumes_an_upload_left_unfinished(
    service_env, kafka_bootstrap, token, tmp_path, prefix: str
) -> None:
    from services.intake.file_import import register_import, store_upload
    from services.intake.main import create_app
    from services.intake.segmentation import load_segmentation
    from shared.db import create_pool
    from tests.integration.intake.conftest import intake_settings

    import_dir = tmp_path / "imports"

    async def body():
        yield csv_bytes([row(f"{prefix}-{i}") for i in range(120)])

    facts = await store_upload(body(), import_dir, 10**9, "utf-8")
    pool = await create_pool(service_env["DATABASE_URL"], "intake", 1, 2)
    try:
        record = await register_import(
            pool, facts, "utf-8", load_segmentation(), source="upload", file_name=None
        )
    finally:
        await pool.close()
    assert record.status == "running" and record.high_water_row == 0

    app = create_app(intake_settings(import_dir, import_chunk_rows=50))
    async with app.router.lifespan_context(app):
        intake = Intake(app, None, kafka_bootstrap, token)

        async def completed() -> bool:
            async with intake.pool.acquire() as conn:
                status = await conn.fetchval(
                    "SELECT status FROM imports WHERE import_id = $1", record.import_id
                )
            return status == "completed"

        await eventually(completed, timeout_s=60)
        assert len(await intake.events(prefix)) == 120
    assert not facts.path.exists(), "an imported upload is deleted"


async def test_a_file_over_the_size_limit_is_refused(service_env, kafka_bootstrap, token, tmp_path) -> None:
    from services.intake.main import create_app
    from tests.integration.intake.conftest import intake_settings

    app = create_app(intake_settings(tmp_path / "imports", max_import_bytes=1000))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            intake = Intake(app, http, kafka_bootstrap, token)
            response = await intake.upload(csv_bytes([row(f"BIG-{i}") for i in range(10)]))
    assert response.status_code == 413 and response.json()["detail"][0]["field"] == "body"
    assert list((tmp_path / "imports").iterdir()) == [], "nothing of it is kept"


async def test_chunks_applied_two_at_a_time_keep_each_accounts_order(intake: Intake, prefix: str) -> None:
    """Chunks of 50 rows go two at a time (two connections) when their accounts differ; an
    account in consecutive chunks waits for the first to commit; a batch meanwhile waits for
    both. Every account publishes what the JSON batches publish for the same days, in order."""

    def history(who: str) -> list[dict[str, str]]:
        rows = []
        for day in range(1, 5):  # four days of 60 accounts: each account in consecutive chunks
            for i in range(60):
                overdue = "1500.00" if (i + day) % 3 else "0.00"
                rows.append(
                    row(
                        f"{who}-{i:02d}",
                        as_of=f"2026-11-{day:02d}",
                        days_past_due=str(day * 20),
                        overdue_amount=overdue,
                    )
                )
        return rows

    upload = asyncio.ensure_future(intake.upload(csv_bytes(history(prefix))))
    by_batch = history(prefix + "J")
    for day in range(4):
        response = await intake.batch(
            [_document(r) for r in by_batch[day * 60 : day * 60 + 60]], f"{prefix}-{day}"
        )
        assert response.status_code == 200, response.text
    answer = (await upload).json()
    assert answer["status"] == "completed" and answer["rows_accepted"] == 240
    assert answer["chunks_committed"] >= 240 // 50
    from_file, from_batches = await intake.events(prefix + "-"), await intake.events(prefix + "J-")
    assert len(from_file) == len(from_batches) > 240
    for i in range(60):
        mine = [e.type for e in from_file if e.subject == f"{prefix}-{i:02d}"]
        assert mine == [e.type for e in from_batches if e.subject == f"{prefix}J-{i:02d}"], i
    async with intake.pool.acquire() as conn:
        stored = await conn.fetch("SELECT as_of FROM accounts WHERE account_id LIKE $1", prefix + "-%")
    assert len(stored) == 60 and {r["as_of"].day for r in stored} == {4}


def _document(values: dict[str, str]) -> dict:
    from services.intake.csv_format import row_to_document

    return row_to_document([values[c] for c in COLUMNS])


async def test_the_flags_a_file_row_stores_are_those_jsonb_build_object_makes(intake: Intake) -> None:
    """The file path picks a row's flags from 64 constants (repository._flags_sql): every
    combination, `care_hold` kept from the stored flags or false for a new account, is the
    jsonb value (and text) that building the object gives."""
    from services.intake.repository import FLAG_NAMES, _flags_sql

    columns = ", ".join(f"(b & {1 << i}) <> 0 AS {name}" for i, name in enumerate(FLAG_NAMES))
    built = ", ".join(f"'{name}', s.{name}" for name in FLAG_NAMES)
    async with intake.pool.acquire() as conn:
        rows = await conn.fetch(
            f"""
            SELECT {_flags_sql()} AS picked, jsonb_build_object({built}) AS built,
                   ({_flags_sql()})::text = jsonb_build_object({built})::text AS same_text
            FROM (SELECT {columns} FROM generate_series(0, 63) b) s,
                 LATERAL (SELECT CASE WHEN s.care_hold THEN jsonb_build_object('care_hold', true)
                                      WHEN s.dispute THEN NULL
                                      ELSE jsonb_build_object('care_hold', false) END AS prev_flags) a
            """
        )
    assert len(rows) == 64
    assert [r["picked"] for r in rows] == [r["built"] for r in rows]
    assert all(r["same_text"] for r in rows)
