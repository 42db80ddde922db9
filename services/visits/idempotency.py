"""Exactly-once writes for an app that queues requests offline and sends them again.

Two layers, both inside the write's transaction:
- the client-generated id of what is written (outcome_id, checkin_id, deposit_id): a row
  that exists already is answered from the database (200), provided the request is the one
  that created it (same fingerprint), else 409;
- the `Idempotency-Key` header: the first response to a key is stored with the key and
  replayed, status and body, to every later request with the same key and the same
  fingerprint; the same key with another request is 409. Two sends racing on one key
  serialise on the key's primary key: the second sees the first's committed response.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from fastapi import Response
from pydantic import BaseModel

from services.visits import repository
from shared.errors import Conflict

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"
REPLAYED_HEADER = "Idempotent-Replayed"


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """Of the request as understood (parsed, re-serialised): key order and spacing don't count."""
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(body.model_dump_json().encode())
    return digest.hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class Written:
    """A write's response as bytes: what a replay sends again, byte for byte."""

    status_code: int
    body: bytes
    replayed: bool = False

    @classmethod
    def of(cls, view: BaseModel, created: bool) -> Written:
        return cls(201 if created else 200, view.model_dump_json().encode())

    def response(self) -> Response:
        headers = {REPLAYED_HEADER: "true"} if self.replayed else None
        return Response(
            self.body, status_code=self.status_code, media_type="application/json", headers=headers
        )


async def idempotent(
    conn: asyncpg.Connection,
    agent_id: str,
    key: str | None,
    request_fingerprint: str,
    write: Callable[[], Awaitable[Written]],
) -> Written:
    """Run `write` once per (agent, key); without a key the client id alone dedupes."""
    if key is None:
        return await write()
    if not await repository.claim_idempotency_key(conn, agent_id, key, request_fingerprint):
        stored = await repository.idempotency_record(conn, agent_id, key)
        if stored is None or stored["fingerprint"] != request_fingerprint or stored["status_code"] is None:
            raise Conflict("Idempotency-Key already used for a different request", "Idempotency-Key")
        return Written(stored["status_code"], stored["response"], replayed=True)
    written = await write()
    await repository.store_idempotent_response(conn, agent_id, key, written.status_code, written.body)
    return written


def check_replay(stored_fingerprint: str | None, request_fingerprint: str, field: str) -> None:
    """A client id sent again must come with the request that created it."""
    if stored_fingerprint is not None and stored_fingerprint != request_fingerprint:
        raise Conflict(f"{field} already used for a different request", field)
