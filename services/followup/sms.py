"""SMS providers behind one interface; the HTTP adapter speaks to a real gateway or the sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from shared.retry import is_transient


@dataclass(frozen=True, slots=True)
class SmsMessage:
    idempotency_key: str
    to: str = field(repr=False)
    text: str = field(repr=False)
    template_id: str
    language: str
    params: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class SmsReceipt:
    provider_message_id: str
    status: str


class SmsRejected(Exception):
    """The provider refused the message for good (4xx): retrying cannot help."""


class ProviderUnavailable(Exception):
    """5xx or 429: worth another try later."""


class SmsProvider(Protocol):
    async def send(self, message: SmsMessage) -> SmsReceipt: ...


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderUnavailable) or is_transient(exc)


@dataclass(frozen=True, slots=True)
class Callbacks:
    """Where the gateway reports delivery and forwards replies (our webhooks)."""

    status_url: str | None = None
    reply_url: str | None = None


class HttpSmsProvider:
    """POST /v1/messages with an Idempotency-Key: a resend after a crash is the same SMS.

    `template_ids` maps our template ids to the gateway's registered ones (gateways in China
    only send pre-approved templates); unmapped ids are sent as they are.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: str,
        sender_id: str,
        attempts: int = 4,
        template_ids: Mapping[str, str] | None = None,
        callbacks: Callbacks | None = None,
    ) -> None:
        self._client = client
        self._api_key = api_key
        self._sender_id = sender_id
        self._attempts = attempts
        self._template_ids = dict(template_ids or {})
        self._callbacks = callbacks or Callbacks()

    async def send(self, message: SmsMessage) -> SmsReceipt:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=5),
            reraise=True,
        ):
            with attempt:
                return await self._post(message)
        raise AssertionError("unreachable: tenacity reraises")

    def _body(self, message: SmsMessage) -> dict[str, object]:
        body: dict[str, object] = {
            "to": message.to,
            "sender_id": self._sender_id,
            "text": message.text,
            "template_id": self._template_ids.get(message.template_id, message.template_id),
            "template_params": dict(message.params),
            "language": message.language,
        }
        if self._callbacks.status_url:
            body["status_callback_url"] = self._callbacks.status_url
        if self._callbacks.reply_url:
            body["reply_callback_url"] = self._callbacks.reply_url
        return body

    async def _post(self, message: SmsMessage) -> SmsReceipt:
        response = await self._client.post(
            "/v1/messages",
            headers={"Authorization": f"Bearer {self._api_key}", "Idempotency-Key": message.idempotency_key},
            json=self._body(message),
        )
        if response.status_code == 429 or response.status_code >= 500:
            raise ProviderUnavailable(f"provider answered {response.status_code}")
        if response.status_code >= 400:
            raise SmsRejected(f"provider refused the message: {response.status_code}")
        body = response.json()
        return SmsReceipt(provider_message_id=str(body["message_id"]), status=str(body["status"]))
