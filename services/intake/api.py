"""Core banking's door: JSON batches and daily files of account snapshots; the accounts they left."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from services.intake import file_import, handlers, repository
from services.intake.csv_format import COLUMNS, ENCODINGS, encoding_name
from services.intake.handlers import BatchRejected, ingest_batch
from services.intake.masking import CONTACT_ROLES, READER_ROLES
from services.intake.models import AccountSnapshot
from services.intake.segmentation import Segmentation
from services.intake.settings import IntakeSettings
from shared.auth import Principal, require_role
from shared.errors import Invalid, NotFound
from shared.runtime import runtime_of

router = APIRouter(prefix="/v1", tags=["core banking"])
CoreBanking = Annotated[Principal, Depends(require_role("core_banking"))]
ImportReader = Annotated[Principal, Depends(require_role("core_banking", "ops"))]
AccountReader = Annotated[Principal, Depends(require_role(*READER_ROLES))]

_BATCH_EXAMPLE = {
    "all_or_nothing": False,
    "snapshots": [
        {
            "account_id": "LN-0001",
            "customer_id": "C-0001",
            "product": "cash_loan",
            "currency": "CNY",
            "as_of": "2026-11-28",
            "principal": "12000.00",
            "outstanding": "8000.00",
            "overdue_amount": "1500.00",
            "days_past_due": 35,
            "customer": {"phone": "+8613800000000", "language": "zh-CN", "time_zone": "Asia/Shanghai"},
            "address": {
                "line1": "1 Example Rd",
                "city": "Shenzhen",
                "country": "CN",
                "lat": 22.54,
                "lon": 114.06,
            },
        }
    ],
}


@router.post(
    "/snapshot-batches",
    summary="Submit a batch of account snapshots",
    description=(
        "Each row is validated on its own; invalid rows are reported (row, field path, reason) "
        "and the valid ones applied, unless `all_or_nothing` is true. `Idempotency-Key` makes a "
        "re-sent batch return its first answer without publishing anything again."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["snapshots"],
                        "properties": {
                            "all_or_nothing": {"type": "boolean", "default": False},
                            "snapshots": {
                                "type": "array",
                                "items": AccountSnapshot.model_json_schema(
                                    ref_template="#/components/schemas/{model}"
                                ),
                            },
                        },
                    },
                    "example": _BATCH_EXAMPLE,
                }
            },
        }
    },
    responses={
        200: {"description": "applied"},
        409: {"description": "key reused"},
        422: {"description": "no row accepted"},
    },
)
async def submit_batch(
    request: Request,
    _: CoreBanking,
    idempotency_key: Annotated[str, Header(min_length=8, max_length=200)],
) -> JSONResponse:
    settings: IntakeSettings = request.app.state.settings
    body = await _bounded_body(request, settings.max_batch_bytes)
    rows, all_or_nothing = _parse_batch(body, settings.max_batch_rows)
    seg: Segmentation = request.app.state.segmentation
    try:
        answer, replayed = await ingest_batch(
            runtime_of(request.app).pool, idempotency_key, body, rows, all_or_nothing, seg
        )
    except BatchRejected as rejected:
        return JSONResponse(rejected.answer, status_code=422)
    return JSONResponse(answer, headers={"Idempotent-Replayed": str(replayed).lower()})


async def _bounded_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Invalid(f"body larger than {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_batch(body: bytes, max_rows: int) -> tuple[list[Any], bool]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Invalid("not valid JSON", "body") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("snapshots"), list):
        raise Invalid("expected an object with a 'snapshots' array", "snapshots")
    rows = doc["snapshots"]
    if not rows:
        raise Invalid("empty batch", "snapshots")
    if len(rows) > max_rows:
        raise Invalid(f"at most {max_rows} snapshots per batch", "snapshots")
    all_or_nothing = doc.get("all_or_nothing", False)
    if not isinstance(all_or_nothing, bool):
        raise Invalid("must be a boolean", "all_or_nothing")
    return rows, all_or_nothing


# --- daily files ------------------------------------------------------------------------


@router.post(
    "/imports",
    summary="Upload a daily account file (CSV) for import",
    description=(
        "The request body is the file itself (`Content-Type: text/csv`), streamed to disk, never "
        "held in memory. Columns and formats: docs/intake.md. `encoding` is utf-8 (with or "
        "without BOM), gb18030 or gbk. The same file (content and encoding) again is a no-op "
        "that answers with the first import. 202: importing in the background (poll the "
        "Location); with `wait=true` the answer comes when the import is done (201)."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": ",".join(COLUMNS) + "\n",
                }
            },
        }
    },
    responses={
        200: {"description": "imported before: nothing read or published again"},
        201: {"description": "imported (wait=true)"},
        202: {"description": "importing; poll Location"},
        409: {"description": "being imported by another process"},
        413: {"description": "larger than MAX_IMPORT_BYTES"},
        422: {"description": "bad encoding parameter, empty file or header not the documented one"},
    },
)
async def upload_file(
    request: Request,
    _: CoreBanking,
    encoding: Annotated[str, Query(description=f"one of {', '.join(ENCODINGS)}")] = "utf-8",
    file_name: Annotated[str | None, Query(max_length=200)] = None,
    wait: bool = False,
) -> JSONResponse:
    settings: IntakeSettings = request.app.state.settings
    upload = await file_import.accept_upload(
        runtime_of(request.app).pool,
        request.app.state.imports,
        request.stream(),
        encoding=encoding_name(encoding),
        file_name=file_name,
        settings=settings,
        seg=request.app.state.segmentation,
        wait=wait,
    )
    answer = {**file_import.summary(upload.record), "replayed": upload.replayed}
    if upload.replayed:
        return JSONResponse(answer)
    location = {"Location": f"/v1/imports/{upload.record.import_id}"}
    return JSONResponse(answer, 201 if wait else 202, headers=location)


@router.get("/imports", summary="The latest imports, newest first")
async def list_imports(
    request: Request, _: ImportReader, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> dict[str, Any]:
    async with runtime_of(request.app).pool.acquire() as conn:
        records = await repository.recent_imports(conn, limit)
    return {"imports": [file_import.summary(r) for r in records]}


@router.get("/imports/{import_id}", summary="An import's progress and outcome")
async def get_import(request: Request, _: ImportReader, import_id: uuid.UUID) -> dict[str, Any]:
    async with runtime_of(request.app).pool.acquire() as conn:
        record = await repository.get_import(conn, import_id)
        if record is None:
            raise NotFound("no such import", "import_id")
        reasons = await repository.rejection_reasons(conn, import_id)
    return file_import.summary(record, reasons)


@router.get(
    "/imports/{import_id}/rejected-rows",
    summary="The rejected-rows report: row, line, column and reason (never the value)",
)
async def rejected_rows(
    request: Request,
    _: ImportReader,
    import_id: uuid.UUID,
    after_row: Annotated[int, Query(ge=0, description="continue after this row")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    async with runtime_of(request.app).pool.acquire() as conn:
        if await repository.get_import(conn, import_id) is None:
            raise NotFound("no such import", "import_id")
        problems = await repository.rejected_rows(conn, import_id, after_row, limit)
    rows = [{"row": p.row, "line": p.line, "column": p.column, "reason": p.reason} for p in problems]
    return {
        "import_id": str(import_id),
        "rows": rows,
        "next_after_row": rows[-1]["row"] if len(rows) == limit else None,
    }


# --- accounts and their segmentation ----------------------------------------------------


@router.get(
    "/accounts/{account_id}",
    tags=["accounts"],
    summary="An account as intake knows it (contact data masked unless the role needs it)",
)
async def get_account(request: Request, principal: AccountReader, account_id: str) -> dict[str, Any]:
    return await handlers.get_account(
        runtime_of(request.app).pool,
        account_id,
        principal.role in CONTACT_ROLES,
        request.app.state.segmentation,
    )


@router.get(
    "/accounts",
    tags=["accounts"],
    summary="Accounts in id order (contact data masked unless the role needs it)",
)
async def list_accounts(
    request: Request,
    principal: AccountReader,
    after: Annotated[str, Query(max_length=64, description="continue after this account id")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    dpd_bucket: Annotated[str | None, Query(max_length=64)] = None,
    delinquent: bool | None = None,
) -> dict[str, Any]:
    return await handlers.list_accounts(
        runtime_of(request.app).pool,
        after=after,
        limit=limit,
        dpd_bucket=dpd_bucket,
        delinquent=delinquent,
        reveal_contact=principal.role in CONTACT_ROLES,
        seg=request.app.state.segmentation,
    )


@router.get("/segmentation", tags=["accounts"], summary="The DPD buckets and scoring rules in force")
async def segmentation(request: Request, _: AccountReader) -> dict[str, Any]:
    seg: Segmentation = request.app.state.segmentation
    return {
        "version": seg.version,
        "buckets": [
            {"name": b.name, "min_dpd": b.min_dpd, "max_dpd": b.max_dpd, "weight": b.weight}
            for b in seg.buckets
        ],
        "score": {
            "amount_weight": seg.rules.amount_weight,
            "arrears_weight": seg.rules.arrears_weight,
            "arrears_cap": seg.rules.arrears_cap,
            "recent_payment_days": seg.rules.recent_payment_days,
            "recent_payment_points": seg.rules.recent_payment_points,
            "vulnerable_penalty": seg.rules.vulnerable_penalty,
        },
    }
