"""The HTTP SMS provider adapter against a scripted gateway (httpx.MockTransport): the
Idempotency-Key is the job id on every attempt, 429/5xx are retried with a cap, a 4xx fails
the message for good, our template ids map to the gateway's."""

import json

import httpx
import pytest

from services.followup.sms import Callbacks, HttpSmsProvider, ProviderUnavailable, SmsMessage, SmsRejected

MESSAGE = SmsMessage("job-1", "+8613800001111", "text", "promise_reminder", "zh-CN", {"amount": "1.00"})


def provider(answers: list[int], seen: list[httpx.Request], attempts: int = 4) -> HttpSmsProvider:
    script = iter(answers)

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        code = next(script)
        return httpx.Response(code, json={"message_id": "m-1", "status": "accepted"} if code < 300 else {})

    client = httpx.AsyncClient(base_url="http://gateway.test", transport=httpx.MockTransport(gateway))
    return HttpSmsProvider(
        client,
        "key-1",
        "FC",
        attempts=attempts,
        template_ids={"promise_reminder": "TPL_778"},
        callbacks=Callbacks("http://us/receipts", "http://us/inbound"),
    )


async def test_busy_and_failing_gateways_are_retried_with_the_same_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    receipt = await provider([429, 503, 202], seen).send(MESSAGE)
    assert receipt.provider_message_id == "m-1"
    assert [r.headers["Idempotency-Key"] for r in seen] == ["job-1"] * 3
    assert all(r.headers["Authorization"] == "Bearer key-1" for r in seen)
    body = json.loads(seen[-1].content)
    assert body["template_id"] == "TPL_778" and body["template_params"] == {"amount": "1.00"}
    assert (
        body["status_callback_url"] == "http://us/receipts"
        and body["reply_callback_url"] == "http://us/inbound"
    )


async def test_retries_stop_at_the_cap() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(ProviderUnavailable):
        await provider([500, 502, 503], seen, attempts=3).send(MESSAGE)
    assert len(seen) == 3


async def test_a_refusal_is_final() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(SmsRejected):
        await provider([400, 202], seen).send(MESSAGE)
    assert len(seen) == 1
