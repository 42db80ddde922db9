"""Fault injection for the crash tests: SIGKILL this process at a named step.

Set FOLLOWUP_FAULT_STEP to one of STEPS and the SMS worker kills its own process the first
time it reaches that step: no `finally`, no commit, no goodbye to the broker or the
database — exactly what a power cut or an OOM kill does. Unset in production.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

AFTER_CLAIM = "sms.after_claim"
AFTER_PROVIDER_ACCEPTED = "sms.after_provider_accepted"
BEFORE_COMMIT = "sms.before_commit"
STEPS = (AFTER_CLAIM, AFTER_PROVIDER_ACCEPTED, BEFORE_COMMIT)


class FaultPoints:
    def __init__(self, kill_at: str | None) -> None:
        if kill_at is not None and kill_at not in STEPS:
            raise ValueError(f"unknown fault step {kill_at!r}; one of {', '.join(STEPS)}")
        self._kill_at = kill_at

    def reached(self, step: str) -> None:
        if step == self._kill_at:
            log.warning("fault injection: killing the process", extra={"step": step})
            os.kill(os.getpid(), signal.SIGKILL)
