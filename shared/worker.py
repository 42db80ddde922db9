"""A background loop woken by PostgreSQL NOTIFY: drain work, then sleep until notified.

The timer only covers a lost notification (e.g. across a reconnect); the work itself is
claimed by the step with FOR UPDATE SKIP LOCKED, so several replicas may run the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from shared.retry import is_transient

log = logging.getLogger(__name__)


async def run_notified(
    pool: Any,
    channel: str,
    step: Callable[[], Awaitable[bool]],
    stopping: asyncio.Event,
    safety_poll_s: float = 5.0,
    settle_s: float = 0.0,
) -> None:
    """Call `step()` while it reports work done; wait for NOTIFY on `channel` in between.

    `settle_s` lets a burst of notifications settle before draining (coalescing work).
    """
    wake = asyncio.Event()

    def on_notify(*_: object) -> None:
        wake.set()

    async with pool.acquire() as listener:
        await listener.add_listener(channel, on_notify)
        try:
            while not stopping.is_set():
                wake.clear()
                await _drain(step, stopping, channel)
                await _wait_either(wake, stopping, safety_poll_s)
                if settle_s and not stopping.is_set():
                    await _wait_either(stopping, stopping, settle_s)
        finally:
            await listener.remove_listener(channel, on_notify)


async def _drain(step: Callable[[], Awaitable[bool]], stopping: asyncio.Event, channel: str) -> None:
    try:
        while not stopping.is_set() and await step():
            pass
    except Exception as exc:
        if not is_transient(exc):
            log.exception("worker step failed", extra={"channel": channel})
        else:
            log.warning("worker step will retry", extra={"channel": channel, "error": type(exc).__name__})


async def _wait_either(first: asyncio.Event, second: asyncio.Event, timeout_s: float) -> None:
    waiters = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED), timeout_s)
    finally:
        for waiter in waiters:
            waiter.cancel()
