"""Run the test suite (or any command) against noida-db instead of the development broker.

    python -m deploy.noida                      # the integration suite, single-member tests
    python -m deploy.noida -- pytest tests/integration/test_outbox.py -x
    python -m deploy.noida --keep-data -- python -m deploy.check --checks broker,topics

It starts noida-db's Kafka listener on a free loopback port with a fresh data directory
(disk persistence on), exports KAFKA_BOOTSTRAP_SERVERS and KAFKA_ENABLE_IDEMPOTENCE=true
(the production producer settings) to the command, and stops the broker when the command
ends, returning the command's exit status. noida-db wedges a consumer group with two or
more members when a commit lands during a rebalance, so the default run deselects the tests
marked `multi_member`; docs/brokers.md lists the differences found.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from deploy import devstack

DEFAULT_COMMAND = (sys.executable, "-m", "pytest", "tests/integration", "-m", "not multi_member")


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="python -m deploy.noida", description="Run a command against a fresh noida-db broker."
    )
    parse.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where noida-db persists (default: a new directory under .devstack/noida/)",
    )
    parse.add_argument(
        "--keep-data", action="store_true", help="keep the data directory afterwards (it is printed)"
    )
    parse.add_argument(
        "command", nargs=argparse.REMAINDER, help="the command to run (default: the integration suite)"
    )
    return parse


def run(command: Sequence[str], data_dir: Path, log_dir: Path) -> int:
    broker = devstack.start_noida_broker(data_dir, log_dir=log_dir)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "KAFKA_ENABLE_IDEMPOTENCE": "true",
    }
    print(f"noida-db listening on {broker.bootstrap} (data in {data_dir})", flush=True)
    try:
        return subprocess.call(list(command), env=env, cwd=devstack.ROOT)
    finally:
        broker.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = list(args.command[1:] if args.command[:1] == ["--"] else args.command)
    command = command or list(DEFAULT_COMMAND)
    if command[0] == "pytest":
        command = [sys.executable, "-m", *command]
    base = devstack.STATE_DIR / "noida"
    base.mkdir(parents=True, exist_ok=True)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="run-", dir=base))
    try:
        return run(command, data_dir, log_dir=base)
    finally:
        if args.keep_data or args.data_dir is not None:
            print(f"noida-db data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
