"""A local SMS gateway for development and tests: a real HTTP server that records messages.

Same contract as the production adapter expects: bearer key, Idempotency-Key, JSON body;
the same key twice returns the first message and sends nothing new.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.db import create_pool, migrate
from shared.settings import ServiceSettings

SCHEMA = "sms_sandbox"
SERVICE_DIR = Path(__file__).parent


class SandboxSettings(ServiceSettings):
    http_port: int = 8090
    sms_sandbox_api_key: SecretStr


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(pattern=r"^\+?[0-9][0-9 -]{4,30}$")
    sender_id: str = Field(min_length=1, max_length=20)
    text: str = Field(min_length=1, max_length=1000)
    template_id: str = Field(min_length=1, max_length=64)
    language: str = Field(min_length=2, max_length=16)


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    settings = settings or SandboxSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings.database_url, SCHEMA, 1, 5)
        async with pool.acquire() as conn:
            await migrate(conn, SCHEMA, SERVICE_DIR)
        app.state.pool = pool
        yield
        await pool.close()

    app = FastAPI(title="SMS gateway sandbox", lifespan=lifespan)

    def authorized(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = f"Bearer {settings.sms_sandbox_api_key.get_secret_value()}"
        if authorization is None or not secrets.compare_digest(authorization, expected):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bad api key")

    @app.post("/v1/messages", status_code=status.HTTP_202_ACCEPTED, dependencies=[Depends(authorized)])
    async def send(
        message: MessageIn, request: Request, idempotency_key: Annotated[str, Header(min_length=8)]
    ) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn:
            row = await conn.fetchrow(
                """
                INSERT INTO messages (message_id, idempotency_key, to_number, sender_id, template_id,
                                      language, text, status)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 'accepted')
                ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
                RETURNING message_id, status
                """,
                uuid.uuid4(),
                idempotency_key,
                message.to,
                message.sender_id,
                message.template_id,
                message.language,
                message.text,
            )
        return {"message_id": str(row["message_id"]), "status": row["status"]}

    @app.get("/v1/messages", dependencies=[Depends(authorized)])
    async def list_messages(request: Request, to: str | None = None) -> list[dict[str, Any]]:
        async with request.app.state.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT message_id, idempotency_key, to_number, template_id, language, text, status,"
                " received_at FROM messages WHERE ($1::text IS NULL OR to_number = $1) ORDER BY received_at",
                to,
            )
        return [dict(r) for r in rows]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
