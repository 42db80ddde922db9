"""The auditor's API: entries by case or date range, streaming exports, chain verification."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from services.audit import handlers, repository
from services.audit.settings import AuditSettings
from shared.auth import Principal, require_role
from shared.runtime import runtime_of

router = APIRouter(prefix="/v1/audit", tags=["auditors"])
Auditor = Annotated[Principal, Depends(require_role("auditor"))]
Operator = Annotated[Principal, Depends(require_role("ops"))]


@router.get("/entries", summary="Contact attempts of a case or a period, oldest first")
async def entries(
    request: Request,
    _: Auditor,
    account_id: str | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    async with runtime_of(request.app).pool.acquire() as conn:
        rows = await repository.page(conn, account_id, since, until, limit)
    return [dict(r) for r in rows]


@router.get("/export", summary="Stream a case's or a period's entries as CSV or JSON lines")
async def export(
    request: Request,
    _: Auditor,
    format: Literal["csv", "json"] = "csv",
    account_id: str | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> StreamingResponse:
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    body = handlers.export(runtime_of(request.app).pool, format, account_id, since, until)
    name = f"audit-{account_id or 'all'}.{'csv' if format == 'csv' else 'jsonl'}"
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/verify", summary="Recompute the hash chain and report the first broken entry")
async def verify(request: Request, _: Auditor) -> dict[str, Any]:
    result = await handlers.verify(runtime_of(request.app).pool)
    return result.__dict__


@router.post("/purge", summary="Delete entries past the retention period (leaves a checkpoint)")
async def purge(request: Request, _: Operator) -> dict[str, Any]:
    settings: AuditSettings = request.app.state.settings
    deleted = await handlers.purge_expired(runtime_of(request.app).pool, settings.audit_retention_days)
    return {
        "deleted": deleted,
        "retention_days": settings.audit_retention_days,
        "at": datetime.now().isoformat(),
    }
