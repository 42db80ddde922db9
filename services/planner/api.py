"""Supervisors' API: agents, absences, cases' next action, day plans and their visits."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from services.planner import repository
from services.planner.models import Agent, AgentIn
from services.planner.planning import PlanOptions, plan_day
from shared.auth import Principal, require_role
from shared.errors import Invalid, NotFound
from shared.runtime import runtime_of

router = APIRouter(prefix="/v1", tags=["supervisors"])
Supervisor = Annotated[Principal, Depends(require_role("supervisor"))]


class AbsenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=200, examples=["sick leave"])


class PlanRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"plan_date": "2026-11-30", "region": "shenzhen"}}
    )
    plan_date: date
    region: str = Field(min_length=1, max_length=64)


@router.put("/agents/{agent_id}", response_model=Agent)
async def put_agent(agent_id: str, agent: AgentIn, request: Request, _: Supervisor) -> AgentIn:
    if agent.agent_id != agent_id:
        raise Invalid("does not match the path", "agent_id")
    async with runtime_of(request.app).pool.acquire() as conn, conn.transaction():
        await repository.upsert_agent(conn, agent)
    return agent


@router.get("/agents", response_model=list[Agent])
async def get_agents(request: Request, _: Supervisor) -> list[Agent]:
    async with runtime_of(request.app).pool.acquire() as conn:
        return await repository.list_agents(conn)


@router.put("/agents/{agent_id}/absences/{day}", summary="Record an absence; that day is re-planned")
async def put_absence(
    agent_id: str, day: date, body: AbsenceIn, request: Request, _: Supervisor
) -> dict[str, Any]:
    async with runtime_of(request.app).pool.acquire() as conn, conn.transaction():
        region = await repository.agent_region(conn, agent_id)
        if region is None:
            raise NotFound("no such agent", "agent_id")
        await repository.add_absence(conn, agent_id, day, body.reason)
        await repository.request_plan(conn, day, region, "agent absent")
    return {"agent_id": agent_id, "day": day.isoformat(), "replan_requested": True}


@router.post("/plans", summary="Plan (or re-plan) a region's day now and report what could not be planned")
async def post_plan(body: PlanRequest, request: Request, _: Supervisor) -> dict[str, Any]:
    options: PlanOptions = request.app.state.plan_options
    async with runtime_of(request.app).pool.acquire() as conn, conn.transaction():
        outcome = await plan_day(conn, body.plan_date, body.region.lower(), options)
    return outcome.summary()


@router.get("/plans/{plan_id}")
async def get_plan(plan_id: UUID, request: Request, _: Supervisor) -> dict[str, Any]:
    async with runtime_of(request.app).pool.acquire() as conn:
        row = await repository.get_plan(conn, plan_id)
    if row is None:
        raise NotFound("no such plan", "plan_id")
    return dict(row)


@router.get("/visits")
async def get_visits(request: Request, _: Supervisor, plan_date: date | None = None) -> list[dict[str, Any]]:
    async with runtime_of(request.app).pool.acquire() as conn:
        return await repository.list_visits(conn, plan_date)


@router.get("/cases/{account_id}", summary="A case's next action and the rule that chose it")
async def get_case(account_id: str, request: Request, _: Supervisor) -> dict[str, Any]:
    async with runtime_of(request.app).pool.acquire() as conn:
        row = await repository.case_view(conn, account_id)
    if row is None:
        raise NotFound("no such case", "account_id")
    return dict(row)
