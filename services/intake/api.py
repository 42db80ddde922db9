"""Core banking's door: JSON batches of account snapshots."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from services.intake.handlers import BatchRejected, ingest_batch
from services.intake.models import AccountSnapshot
from services.intake.segmentation import Segmentation
from services.intake.settings import IntakeSettings
from shared.auth import Principal, require_role
from shared.errors import Invalid
from shared.runtime import runtime_of

router = APIRouter(prefix="/v1", tags=["core banking"])
CoreBanking = Annotated[Principal, Depends(require_role("core_banking"))]

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
