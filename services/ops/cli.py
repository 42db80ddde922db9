"""The console from a terminal, straight against the broker (KAFKA_BOOTSTRAP_SERVERS):

    python -m services.ops tail TOPIC [--type T] [--account A] [--from-beginning]
    python -m services.ops lag [--group G]
    python -m services.ops dlq list GROUP [--partition P] [--limit N]
    python -m services.ops dlq show GROUP PARTITION OFFSET
    python -m services.ops dlq replay GROUP --from OFFSET --to OFFSET [--partition P]

Payloads are printed redacted, as on the page. Replays are logged (who, what) on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.ops.broker import BrokerView, ReplayError
from services.ops.feeds import EventFilter, LiveEvent
from services.ops.settings import OpsSettings
from shared.events.topics import ALL_TOPICS, dead_letter_topic
from shared.logging import setup_logging
from shared.tracing import configure_tracing

COMMANDS = ("tail", "lag", "dlq")
log = logging.getLogger("services.ops.cli")


def serve(args: Sequence[str]) -> None:
    """`python -m services.ops [serve]`: the console's web server."""
    from services.ops.main import SERVICE, create_app

    command = args[0] if args else "serve"
    if command == "migrate":
        print("ops: owns no schema, nothing to migrate")
        return
    if command != "serve":
        raise SystemExit(f"unknown command {command!r}: use serve, {', '.join(COMMANDS)}")
    settings = OpsSettings()
    setup_logging(SERVICE, settings.log_level)
    configure_tracing(SERVICE, settings, settings.log_spans)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        loop="uvloop",
        http="httptools",
        # Event streams never end by themselves; viewers reconnect to another replica.
        timeout_graceful_shutdown=3,
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m services.ops", description="Fieldcollect ops from a terminal"
    )
    commands = root.add_subparsers(dest="command", required=True)

    tail = commands.add_parser("tail", help="print a topic's events as they arrive")
    tail.add_argument("topic", help="topic name, or its short name (delinquency, assignments, …)")
    tail.add_argument("--type", help="only this event type")
    tail.add_argument("--account", help="only this account id")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    tail.add_argument("--limit", type=int, default=0, help="stop after this many events (0: never)")
    tail.add_argument("--timeout", type=float, default=0, help="stop after this many seconds (0: never)")
    tail.add_argument("--compact", action="store_true", help="one line per event")

    lag = commands.add_parser("lag", help="consumer-group lag per partition")
    lag.add_argument("--group", help="only this consumer group")

    dlq = commands.add_parser("dlq", help="dead letters: list, show, replay")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_commands.add_parser("list", help="a group's dead letters, oldest first")
    dlq_list.add_argument("group")
    dlq_list.add_argument("--partition", type=int)
    dlq_list.add_argument("--limit", type=int, default=100)
    show = dlq_commands.add_parser("show", help="one dead letter's headers and redacted payload")
    show.add_argument("group")
    show.add_argument("partition", type=int)
    show.add_argument("offset", type=int)
    replay = dlq_commands.add_parser("replay", help="republish dead letters to their original topic")
    replay.add_argument("group")
    replay.add_argument("--from", dest="start", type=int, required=True, help="first DLQ offset")
    replay.add_argument("--to", dest="end", type=int, required=True, help="last DLQ offset (inclusive)")
    replay.add_argument("--partition", type=int, help="DLQ partition (needed when it has several)")
    return root


def main(argv: Sequence[str], out: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    settings = OpsSettings()
    setup_logging("ops-cli", "INFO")
    stream = out or sys.stdout
    try:
        return asyncio.run(_run(args, settings, stream))
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace, settings: OpsSettings, out: TextIO) -> int:
    bootstrap = settings.kafka_bootstrap_servers
    if args.command == "tail":
        flt = EventFilter(None, args.type, args.account)
        color = out.isatty()
        return await tail(bootstrap, resolve_topic(args.topic), flt, args, out, color)
    broker = BrokerView(bootstrap, enable_idempotence=settings.kafka_enable_idempotence)
    await broker.start()
    try:
        if args.command == "lag":
            return await print_lag(broker, args.group, out)
        if args.dlq_command == "list":
            letters = await broker.dead_letters(args.group, args.partition, limit=args.limit)
            print_table(out, DLQ_COLUMNS, [_dlq_row(d.summary()) for d in letters])
            return 0
        if args.dlq_command == "show":
            letter = await broker.dead_letter(args.group, args.partition, args.offset)
            if letter is None:
                print(
                    f"no dead letter at {dead_letter_topic(args.group)}[{args.partition}]@{args.offset}",
                    file=out,
                )
                return 1
            out.write(orjson.dumps(letter.inspect(), option=orjson.OPT_INDENT_2).decode() + "\n")
            return 0
        return await replay(broker, args, out)
    finally:
        await broker.stop()


def resolve_topic(name: str) -> str:
    """A catalog topic by its full or short name (`assignments`), a DLQ by `dlq.<group>`."""
    for topic in ALL_TOPICS:
        if name in (topic, topic.removeprefix("collections.").removesuffix(".v1")):
            return topic
    if name.startswith("dlq."):
        return dead_letter_topic(name.removeprefix("dlq."))
    return name


async def tail(
    bootstrap: str, topic: str, flt: EventFilter, args: argparse.Namespace, out: TextIO, color: bool
) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="fieldcollect-tail"
    )
    await consumer.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout if args.timeout else None
    shown = 0
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = sorted(cluster.partitions_for_topic(topic) or ())
        if not partitions:
            print(f"no such topic: {topic}", file=out)
            return 1
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        if args.from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        while deadline is None or loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records = sorted((r for rs in batch.values() for r in rs), key=lambda r: (r.timestamp, r.offset))
            for record in records:
                event = LiveEvent.of(record)
                if not flt.matches(event):
                    continue
                out.write(format_event(event, compact=args.compact, color=color) + "\n")
                out.flush()
                shown += 1
                if args.limit and shown >= args.limit:
                    return 0
    finally:
        await consumer.stop()
    return 0


def format_event(event: LiveEvent, *, compact: bool = False, color: bool = False) -> str:
    when = datetime.fromtimestamp(event.timestamp_ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
    bold, dim, reset = ("\x1b[1m", "\x1b[2m", "\x1b[0m") if color else ("", "", "")
    head = (
        f"{dim}{when}{reset} {event.topic}[{event.partition}]@{event.offset} "
        f"{bold}{event.type or '?'}{reset} account={event.account or '-'} "
        f"id={event.id or '-'} trace={event.trace_id or '-'}"
    )
    if event.note:
        return f"{head}\n  ({event.note})" if not compact else f"{head} ({event.note})"
    if compact:
        return f"{head} {orjson.dumps(event.payload).decode()}"
    body = orjson.dumps(event.payload, option=orjson.OPT_INDENT_2).decode()
    return head + "\n" + "\n".join("  " + line for line in body.splitlines())


LAG_COLUMNS = ("GROUP", "TOPIC", "PARTITION", "COMMITTED", "HIGHWATER", "LAG")
DLQ_COLUMNS = ("PARTITION", "OFFSET", "FAILED_AT", "TYPE", "ERROR", "ORIGINAL", "ACCOUNT", "REASON")


async def print_lag(broker: BrokerView, group: str | None, out: TextIO) -> int:
    groups = await broker.lag([group] if group else None)
    rows: list[Sequence[Any]] = []
    for g in groups:
        if not g.partitions:
            rows.append((g.group, "(no committed offsets)", "", "", "", ""))
        for p in g.partitions:
            committed = "-" if p.committed is None else p.committed
            rows.append((g.group, p.topic, p.partition, committed, p.highwater, p.lag))
    print_table(out, LAG_COLUMNS, rows)
    for g in groups:
        print(f"{g.group}: total lag {g.total}", file=out)
    return 0


def _dlq_row(d: dict[str, Any]) -> Sequence[Any]:
    original = f"{d['original_topic']}[{d['original_partition']}]@{d['original_offset']}"
    return (
        d["partition"],
        d["offset"],
        d["failed_at"] or "",
        d["type"] or "?",
        d["error_class"] or "",
        original,
        d["account"] or "",
        (d["error_reason"] or "")[:80],
    )


async def replay(broker: BrokerView, args: argparse.Namespace, out: TextIO) -> int:
    try:
        done = await broker.replay(args.group, args.partition, args.start, args.end)
    except ReplayError as exc:
        print(f"nothing replayed: {exc}", file=out)
        return 2
    for r in done:
        print(f"dlq[{r.dlq_partition}]@{r.dlq_offset} -> {r.topic}[{r.partition}]@{r.offset}", file=out)
    print(f"replayed {len(done)} dead letter(s) of {args.group}", file=out)
    log.info(
        "dead letters replayed",
        extra={
            "by": f"cli:{_operator()}",
            "group": args.group,
            "partition": args.partition,
            "from_offset": args.start,
            "to_offset": args.end,
            "count": len(done),
        },
    )
    return 0


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def print_table(out: TextIO, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in columns], *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
