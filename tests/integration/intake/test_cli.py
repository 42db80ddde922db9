"""`python -m services.intake import-file`: refusals and --publish."""

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from shared.events import decode
from shared.events.topics import DELINQUENCY
from tests.integration.intake.conftest import topic_records
from tests.unit.intake.files import csv_bytes, row

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "services.intake", "import-file", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )


async def test_import_and_publish_from_the_command_line(service_env, kafka_bootstrap, tmp_path) -> None:
    prefix = f"CLI{uuid.uuid4().hex[:6].upper()}"
    path = tmp_path / "daily-gbk.csv"
    path.write_bytes(csv_bytes([row(f"{prefix}-{i}", customer_name="赵敏") for i in range(5)], "gbk"))
    done = await asyncio.to_thread(run, [str(path), "--encoding", "gbk", "--publish"], service_env)
    assert done.returncode == 0, done.stderr.decode()
    answer = orjson.loads(done.stdout)
    assert (answer["status"], answer["rows_accepted"], answer["encoding"]) == ("completed", 5, "gbk")
    assert "import" in done.stderr.decode() and "赵敏" not in done.stderr.decode()
    records = await topic_records(kafka_bootstrap, DELINQUENCY)
    events = [decode(r.value, r.headers) for r in records if r.key.decode().startswith(prefix)]
    assert sorted(e.subject for e in events) == [f"{prefix}-{i}" for i in range(5)]
    assert {e.data.contact.name for e in events} == {"赵敏"}


async def test_a_file_that_cannot_be_read_is_refused_with_status_2(service_env, tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("account_id,name\nA,B\n")
    done = await asyncio.to_thread(run, [str(path)], service_env)
    assert done.returncode == 2 and b"header" in done.stderr
