"""Follow-up's API for the care team and operations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.followup import repository
from shared.auth import Principal, require_role
from shared.runtime import runtime_of

router = APIRouter(prefix="/v1", tags=["follow-up"])
Staff = Annotated[Principal, Depends(require_role("care", "ops", "supervisor"))]


@router.get("/sms-jobs", summary="SMS jobs and their state (no phone numbers, no texts)")
async def sms_jobs(request: Request, _: Staff, account_id: str | None = None) -> list[dict[str, Any]]:
    async with runtime_of(request.app).pool.acquire() as conn:
        return await repository.list_jobs(conn, account_id)
