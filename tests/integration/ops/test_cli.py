"""`python -m services.ops …` from a terminal, against the real broker."""

import asyncio
import os
import sys

import pytest
from aiokafka import TopicPartition

from shared.events import Envelope
from shared.events import payloads as p
from shared.events.topics import FOLLOWUPS, dead_letter_topic
from shared.kafka import ensure_topics
from tests.conftest import read_topic
from tests.integration.ops.conftest import commit, produce

pytestmark = pytest.mark.integration


async def ops(bootstrap: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.ops",
        *args,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_ENABLE_IDEMPOTENCE": "false"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode()


async def test_lag_dead_letters_replay_and_tail_from_a_terminal(kafka_bootstrap, uid) -> None:
    group, original = f"test-cli-{uid}", f"test.cli.{uid}"
    await ensure_topics(kafka_bootstrap, [original, dead_letter_topic(group)], 1)
    await commit(kafka_bootstrap, group, TopicPartition(FOLLOWUPS, 0), 0)
    events = [
        Envelope(data=p.RevisitRequested(account_id=f"ACC-{uid}", reason=f"r{n}"), source="/t")
        for n in range(2)
    ]
    dlq_headers = [
        ("dlq_original_topic", original.encode()),
        ("dlq_error_class", b"PermanentError"),
        ("dlq_error_reason", b"reason: not yet"),
        ("dlq_original_offset", b"0"),
    ]
    await produce(
        kafka_bootstrap,
        dead_letter_topic(group),
        [(e.key, e.value(), [*e.headers(), *dlq_headers]) for e in events],
    )

    code, out = await ops(kafka_bootstrap, "lag", "--group", group)
    assert code == 0 and f"{group}: total lag" in out
    assert any(line.split()[:3] == [group, FOLLOWUPS, "0"] for line in out.splitlines()), out

    code, out = await ops(kafka_bootstrap, "dlq", "list", group)
    rows = [line.split() for line in out.splitlines()[1:]]
    assert code == 0 and [r[:2] for r in rows] == [["0", "0"], ["0", "1"]], out
    assert all("PermanentError" in r and f"ACC-{uid}" in r for r in rows)

    code, out = await ops(kafka_bootstrap, "dlq", "show", group, "0", "1")
    assert code == 0 and '"reason": "r1"' in out and '"dlq_error_class": "PermanentError"' in out

    code, out = await ops(kafka_bootstrap, "dlq", "replay", group, "--from", "0", "--to", "1")
    assert code == 0 and f"replayed 2 dead letter(s) of {group}" in out, out
    records = await read_topic(kafka_bootstrap, original, lambda r: len(r) >= 2)
    assert [r.value for r in records] == [e.value() for e in events]
    assert all(not k.startswith("dlq_") for r in records for k, _ in r.headers)

    code, out = await ops(kafka_bootstrap, "dlq", "replay", group, "--from", "7", "--to", "9")
    assert code == 2 and "nothing replayed" in out

    code, out = await ops(
        kafka_bootstrap, "tail", original, "--from-beginning", "--limit", "2", "--timeout", "30"
    )
    assert code == 0 and out.count(f" revisit.requested account=ACC-{uid} ") == 2, out
    assert '"reason": "r0"' in out and f"trace={events[0].traceparent.split('-')[1]}" in out

    code, out = await ops(
        kafka_bootstrap, "tail", original, "--from-beginning", "--type", "sms.sent", "--timeout", "3"
    )
    assert code == 0 and out == ""
