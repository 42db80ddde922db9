"""A local SMS gateway for development and tests: a real HTTP server that records messages.

Same contract as the production adapter expects: bearer key, Idempotency-Key, JSON body;
the same key twice returns the first message and sends nothing new. Like a real gateway it
reports back to the sender's webhooks, signed with its API key (services/followup/webhooks.py):

- with SMS_SANDBOX_AUTO_RECEIPTS=true, a delivery receipt to the message's
  `status_callback_url` shortly after accepting it ("delivered"; "failed" for numbers ending
  in SMS_SANDBOX_FAIL_SUFFIX), retried with backoff. Off by default: the end-to-end test of
  the walking skeleton expects sms.sent alone on the follow-up topic;
- `POST /v1/sandbox/messages/{id}/receipts` sends a receipt of any status on demand;
- `POST /v1/sandbox/inbound` plays a customer's reply ("STOP", "退订") from a number: it is
  forwarded to the `reply_callback_url` of the latest message sent to that number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException, Request, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from services.followup.webhooks import SIGNATURE_HEADER, sign
from shared.db import create_pool, migrate
from shared.settings import ServiceSettings

SCHEMA = "sms_sandbox"
SERVICE_DIR = Path(__file__).parent
log = logging.getLogger(__name__)
ReceiptStatus = Literal["sent", "delivered", "undelivered", "failed", "expired", "unknown"]


class SandboxSettings(ServiceSettings):
    http_port: int = 8090
    sms_sandbox_api_key: SecretStr
    sms_sandbox_delivery_delay_s: float = Field(default=0.2, ge=0)
    sms_sandbox_auto_receipts: bool = False
    sms_sandbox_fail_suffix: str = "0000"


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(pattern=r"^\+?[0-9][0-9 -]{4,30}$")
    sender_id: str = Field(min_length=1, max_length=20)
    text: str = Field(min_length=1, max_length=1000)
    template_id: str = Field(min_length=1, max_length=64)
    template_params: dict[str, str] = Field(default_factory=dict)
    language: str = Field(min_length=2, max_length=16)
    status_callback_url: AnyHttpUrl | None = None
    reply_callback_url: AnyHttpUrl | None = None


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: ReceiptStatus


class InboundIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    sender: str = Field(alias="from", pattern=r"^\+?[0-9][0-9 -]{4,30}$")
    text: str = Field(min_length=1, max_length=1600)


class Gateway:
    """The sandbox's state: its database, its webhook client, receipts in flight."""

    def __init__(self, settings: SandboxSettings, pool: Any, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.pool = pool
        self.client = client
        self.tasks: set[asyncio.Task[None]] = set()

    def later(self, message_id: uuid.UUID, receipt: ReceiptStatus) -> None:
        task = asyncio.create_task(self._deliver_later(message_id, receipt))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver_later(self, message_id: uuid.UUID, receipt: ReceiptStatus) -> None:
        await asyncio.sleep(self.settings.sms_sandbox_delivery_delay_s)
        try:
            await self.report(message_id, receipt)
        except Exception as exc:  # a receipt that cannot be delivered is dropped, like a real gateway does
            log.warning("delivery receipt not delivered", extra={"error": type(exc).__name__})

    async def report(self, message_id: uuid.UUID, receipt: ReceiptStatus) -> int | None:
        """Set a message's status and post the receipt to its webhook (HTTP status, or None)."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "UPDATE messages SET status = $2, status_updated_at = now() WHERE message_id = $1"
                " RETURNING idempotency_key, status_callback_url",
                message_id,
                receipt,
            )
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such message")
        if not row["status_callback_url"]:
            return None
        body = {
            "message_id": str(message_id),
            "status": receipt,
            "idempotency_key": row["idempotency_key"],
            "updated_at": datetime.now(UTC).isoformat(),
        }
        return await self.post_signed(row["status_callback_url"], body)

    async def post_signed(self, url: str, body: dict[str, Any]) -> int:
        """POST a signed webhook; 5xx, 409 and network errors are retried, as gateways do."""
        payload = json.dumps(body).encode()
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, httpx.TransportError | _RetryLater)),
            stop=stop_after_attempt(6),
            wait=wait_exponential_jitter(multiplier=0.2, max=3),
            reraise=True,
        ):
            with attempt:
                signature = sign(
                    self.settings.sms_sandbox_api_key.get_secret_value(), payload, int(time.time())
                )
                response = await self.client.post(
                    url,
                    content=payload,
                    headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
                )
                if response.status_code == 409 or response.status_code >= 500:
                    raise _RetryLater(response.status_code)
                return response.status_code
        raise AssertionError("unreachable: tenacity reraises")


class _RetryLater(Exception):
    pass


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    settings = settings or SandboxSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings.database_url, SCHEMA, 1, 5)
        async with pool.acquire() as conn:
            await migrate(conn, SCHEMA, SERVICE_DIR)
        async with httpx.AsyncClient(timeout=5) as client:
            app.state.gateway = Gateway(settings, pool, client)
            try:
                yield
            finally:
                for task in list(app.state.gateway.tasks):
                    task.cancel()
                await pool.close()

    app = FastAPI(title="SMS gateway sandbox", lifespan=lifespan)

    def authorized(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = f"Bearer {settings.sms_sandbox_api_key.get_secret_value()}"
        if authorization is None or not secrets.compare_digest(authorization, expected):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bad api key")

    def gateway(request: Request) -> Gateway:
        gw: Gateway = request.app.state.gateway
        return gw

    @app.post("/v1/messages", status_code=status.HTTP_202_ACCEPTED, dependencies=[Depends(authorized)])
    async def send(
        message: MessageIn, request: Request, idempotency_key: Annotated[str, Header(min_length=8)]
    ) -> dict[str, Any]:
        gw = gateway(request)
        async with gw.pool.acquire() as conn:
            row = await conn.fetchrow(
                """
                INSERT INTO messages (message_id, idempotency_key, to_number, sender_id, template_id,
                                      language, text, status, template_params, status_callback_url,
                                      reply_callback_url)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 'accepted', $8::jsonb, $9, $10)
                ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
                RETURNING message_id, status, (xmax = 0) AS inserted
                """,
                uuid.uuid4(),
                idempotency_key,
                message.to,
                message.sender_id,
                message.template_id,
                message.language,
                message.text,
                message.template_params,
                str(message.status_callback_url) if message.status_callback_url else None,
                str(message.reply_callback_url) if message.reply_callback_url else None,
            )
        if row["inserted"] and settings.sms_sandbox_auto_receipts and message.status_callback_url:
            failed = message.to.endswith(settings.sms_sandbox_fail_suffix)
            gw.later(row["message_id"], "failed" if failed else "delivered")
        return {"message_id": str(row["message_id"]), "status": row["status"]}

    @app.get("/v1/messages", dependencies=[Depends(authorized)])
    async def list_messages(request: Request, to: str | None = None) -> list[dict[str, Any]]:
        async with gateway(request).pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT message_id, idempotency_key, to_number, template_id, language, text, status,"
                " received_at, status_updated_at FROM messages"
                " WHERE ($1::text IS NULL OR to_number = $1) ORDER BY received_at",
                to,
            )
        return [dict(r) for r in rows]

    @app.post("/v1/sandbox/messages/{message_id}/receipts", dependencies=[Depends(authorized)])
    async def send_receipt(message_id: uuid.UUID, body: ReceiptIn, request: Request) -> dict[str, Any]:
        """Report a status for a message now (the webhook's HTTP status, or null without a webhook)."""
        return {"webhook_status": await gateway(request).report(message_id, body.status)}

    @app.post("/v1/sandbox/inbound", dependencies=[Depends(authorized)])
    async def inbound(body: InboundIn, request: Request) -> dict[str, Any]:
        """A customer's reply, forwarded to the webhook of the latest message sent to that number."""
        gw = gateway(request)
        async with gw.pool.acquire() as conn:
            url = await conn.fetchval(
                "SELECT reply_callback_url FROM messages WHERE to_number = $1 AND reply_callback_url IS NOT NULL"
                " ORDER BY received_at DESC LIMIT 1",
                body.sender,
            )
        if url is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no message was sent to this number")
        reply = {
            "message_id": str(uuid.uuid4()),
            "from": body.sender,
            "text": body.text,
            "received_at": datetime.now(UTC).isoformat(),
        }
        return {"message_id": reply["message_id"], "webhook_status": await gw.post_signed(url, reply)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
