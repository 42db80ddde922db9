"""Follow-up: outcomes in, SMS / calls / care referrals out (collections.followups.v1)."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from services.followup.api import router
from services.followup.consumers import CONSUMERS
from services.followup.jobs import SmsJobWorker
from services.followup.settings import FollowupSettings
from services.followup.sms import HttpSmsProvider
from shared.runtime import Runtime, create_service_app

SCHEMA = "followup"
SERVICE_DIR = Path(__file__).parent


def create_app(settings: FollowupSettings | None = None) -> FastAPI:
    settings = settings or FollowupSettings()  # type: ignore[call-arg]

    async def sms_worker(runtime: Runtime) -> None:
        async with httpx.AsyncClient(
            base_url=settings.sms_provider_url, timeout=settings.sms_provider_timeout_s
        ) as client:
            provider = HttpSmsProvider(
                client, settings.sms_provider_api_key.get_secret_value(), settings.sms_sender_id
            )
            worker = SmsJobWorker(runtime.pool, SCHEMA, provider, settings.sms_job_poll_s)
            await worker.run(runtime.stopping)

    return create_service_app(
        title="Fieldcollect follow-up",
        description="Promises, SMS, calls and care referrals; publishes collections.followups.v1.",
        settings=settings,
        schema=SCHEMA,
        service_dir=SERVICE_DIR,
        routers=[router],
        consumers=CONSUMERS,
        background=[sms_worker],
    )
