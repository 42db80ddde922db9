"""The one retry policy: only transient failures, bounded, exponential backoff with jitter."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from aiokafka.errors import KafkaError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

_TRANSIENT_PG = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
)


def is_transient(exc: BaseException) -> bool:
    """True for failures that may pass on retry: network, broker, database contention."""
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False)) or type(exc).__name__ in (
            "KafkaConnectionError",
            "KafkaTimeoutError",
            "NodeNotReadyError",
        )
    return isinstance(exc, (*_TRANSIENT_PG, OSError, asyncio.TimeoutError, httpx.TransportError))


def transient_retry(attempts: int = 5, initial_s: float = 0.2, max_s: float = 10.0) -> AsyncRetrying:
    """`async for attempt in transient_retry(): with attempt: ...` — reraises when exhausted."""
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=initial_s, max=max_s),
        reraise=True,
    )
