"""Follow-up: outcomes in, SMS / calls / care referrals out (collections.followups.v1)."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from services.followup.api import router
from services.followup.consumers import consumers
from services.followup.contacts import Followup
from services.followup.faults import FaultPoints
from services.followup.gate import ContactGate
from services.followup.handlers import EventHandlers
from services.followup.jobs import SmsJobWorker
from services.followup.promises import PromiseClock
from services.followup.rules import load_rules
from services.followup.settings import FollowupSettings
from services.followup.sms import Callbacks, HttpSmsProvider
from shared.compliance import PackCatalog
from shared.runtime import BackgroundFactory, Runtime, create_service_app
from shared.worker import run_notified

SCHEMA = "followup"
SERVICE_DIR = Path(__file__).parent


def bootstrap(settings: FollowupSettings) -> Followup:
    """The rules, the compliance packs and the gate, built once per process (files only, no I/O)."""
    rules = load_rules(settings.rules_path)
    catalog = (
        PackCatalog.from_toml(settings.compliance_config) if settings.compliance_config else PackCatalog()
    )
    return Followup(rules, ContactGate(catalog, rules.contact_hours), settings.default_time_zone)


def create_app(settings: FollowupSettings | None = None) -> FastAPI:
    settings = settings or FollowupSettings()
    ctx = bootstrap(settings)
    faults = FaultPoints(settings.followup_fault_step)

    async def sms_sender(runtime: Runtime) -> None:
        async with httpx.AsyncClient(
            base_url=settings.sms_provider_url, timeout=settings.sms_provider_timeout_s
        ) as client:
            base = settings.webhook_base()
            provider = HttpSmsProvider(
                client,
                settings.sms_provider_api_key.get_secret_value(),
                settings.sms_sender_id,
                attempts=settings.sms_provider_attempts,
                template_ids=settings.sms_provider_template_ids,
                callbacks=Callbacks(f"{base}/v1/sms/delivery-receipts", f"{base}/v1/sms/inbound"),
            )
            worker = SmsJobWorker(
                runtime.pool, SCHEMA, provider, ctx, settings.sms_send_batch, settings.sms_job_poll_s, faults
            )
            await worker.run(runtime.stopping)

    async def promise_clock(runtime: Runtime) -> None:
        clock = PromiseClock(runtime.pool, ctx)
        # Nothing notifies a promise falling due: the "safety" poll is the clock's tick.
        await run_notified(
            runtime.pool,
            f"promises_{SCHEMA}",
            clock.step,
            runtime.stopping,
            settings.promise_check_interval_s,
        )

    background: list[BackgroundFactory] = [promise_clock]
    if settings.sms_sender_enabled:
        background.append(sms_sender)
    app = create_service_app(
        title="Fieldcollect follow-up",
        description="Promises, SMS, calls and care referrals; publishes collections.followups.v1.",
        settings=settings,
        schema=SCHEMA,
        service_dir=SERVICE_DIR,
        routers=[router],
        consumers=consumers(
            EventHandlers(ctx), settings.outcome_consumers, settings.outcome_fetch_max_wait_ms
        )
        if settings.event_consumers_enabled
        else (),
        background=background,
        # Nothing leaves session state behind (listeners UNLISTEN, the relay releases its lock, no
        # SET outside a transaction): no reset query at each release, a round trip per poll saved.
        reset_sessions=False,
    )
    app.state.followup = ctx
    return app
