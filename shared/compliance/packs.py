"""Rule packs: TOML data files, a lender's overrides merged over them, compiled for speed.

`load_pack("cn")` reads `packs/cn.toml`, validates it (`spec.PackSpec`) and compiles it
into a `RulePack`: per channel a 1,440-byte table of allowed local minutes, a weekday
bitmask, a holiday calendar and the caps that apply, so that a decision is a few lookups.

A lender's compliance team overrides a pack with a mapping (or a TOML file) of the same
shape, deep-merged over the pack: tables merge key by key, lists and values replace,
`sources` merge by id. The override names itself (`override_id`), and the pack's version
becomes `<pack version>+<override_id>`, so every decision says which text decided it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

from shared.compliance.history import ATTEMPTS, CHANNEL_INDEX, CONNECTED, SeriesKey
from shared.compliance.holiday_calendar import HolidayCalendar, calendar_for
from shared.compliance.model import Channel, Customer, Purpose, Suppression
from shared.compliance.spec import WEEKDAYS, CapSpec, PackSpec, parse_span

PACKS_DIR = Path(__file__).parent / "packs"
PACK_IDS = ("cn", "us", "uk", "ie", "in", "id", "ph", "vn")
DEFAULT_PACK_ID = "cn"
_PACK_ID = re.compile(r"^[a-z]{2,8}$")
_OVERRIDE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_OVERRIDE_META = ("override_id", "override_note")


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    regulation: str
    article: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of one pack: its id (e.g. "cn.quiet_hours"), a plain reason, its sources."""

    id: str
    reason: str
    sources: tuple[Source, ...]


class CompiledCap:
    """A frequency cap ready to count: which tally slots, per number or per debtor."""

    __slots__ = ("debtor_key", "limit", "number_channels", "per_number", "rule", "window_days")

    def __init__(self, rule: Rule, spec: CapSpec) -> None:
        kind = ATTEMPTS if spec.counts == "attempts" else CONNECTED
        self.rule = rule
        self.limit = spec.limit
        self.window_days = spec.window_days
        self.debtor_key: SeriesKey = (
            tuple(CHANNEL_INDEX[channel] * 2 + kind for channel in spec.channels),
            None,
        )
        self.per_number = spec.per == "number"
        self.number_channels = tuple(CHANNEL_INDEX[channel] for channel in spec.channels)


class CompiledPause:
    __slots__ = ("days", "rule")

    def __init__(self, rule: Rule, days: int) -> None:
        self.rule = rule
        self.days = days


class ChannelRules:
    """Everything a decision about one channel needs, precomputed from the pack."""

    __slots__ = (
        "_hours_cache", "allowed", "caps", "channel", "closed_weekdays", "consent_extends_hours",
        "dpd_after", "dpd_spans", "has_day_rules", "holiday_country", "holiday_rule", "holidays",
        "pauses", "permitted", "quiet_hours", "rest_day_rule", "runs", "spans", "table",
    )  # fmt: skip

    def __init__(self, pack: PackSpec, channel: Channel, rules: dict[str, Rule]) -> None:
        self.channel = channel
        self.spans = tuple(parse_span(span) for span in pack.quiet_hours.spans(channel))
        self.permitted = bool(self.spans)
        self.table, self.runs = _minute_table(self.spans)
        self.consent_extends_hours = pack.quiet_hours.consent_extends_hours
        dpd = pack.dpd_hours if pack.dpd_hours and channel in pack.dpd_hours.channels else None
        self.dpd_after = None if dpd is None else dpd.after_dpd
        self.dpd_spans = () if dpd is None else tuple(parse_span(span) for span in dpd.hours)
        rest = pack.rest_day if pack.rest_day and channel in pack.rest_day.channels else None
        self.closed_weekdays = sum(1 << WEEKDAYS.index(day) for day in rest.weekdays) if rest else 0
        holiday = (
            pack.public_holiday if pack.public_holiday and channel in pack.public_holiday.channels else None
        )
        self.holiday_country = None if holiday is None else holiday.calendar
        self.holidays: HolidayCalendar | None = None if holiday is None else calendar_for(holiday.calendar)
        self.caps = tuple(
            CompiledCap(rules[key], cap) for key, cap in pack.caps.items() if channel in cap.applies_to
        )
        self.pauses = tuple(
            CompiledPause(rules[key], pause.days)
            for key, pause in pack.pauses.items()
            if channel in pause.applies_to
        )
        self.has_day_rules = bool(self.closed_weekdays or self.holidays)
        self.quiet_hours = _channel_rule(rules["quiet_hours"], channel, self.spans)
        self.rest_day_rule = rules.get("rest_day")
        self.holiday_rule = rules.get("public_holiday")
        self.allowed = rules["allowed"]
        self._hours_cache: dict[tuple[Any, ...], tuple[bytes, tuple[tuple[int, int], ...]]] = {}

    def hours_for(self, customer: Customer) -> tuple[bytes, tuple[tuple[int, int], ...]]:
        """The allowed-minutes table and runs for this customer (consent, DPD exceptions)."""
        extra: tuple[tuple[int, int], ...] = ()
        if self.consent_extends_hours and customer.consent_spans is not None:
            extra += customer.consent_spans
        if self.dpd_after is not None and customer.dpd > self.dpd_after:
            extra += self.dpd_spans
        if not extra or not self.permitted:
            return self.table, self.runs
        cached = self._hours_cache.get(extra)
        if cached is None:
            cached = self._hours_cache[extra] = _minute_table(self.spans + extra)
        return cached

    def holidays_for(self, customer: Customer) -> HolidayCalendar | None:
        if self.holiday_country is None or customer.holiday_subdivision is None:
            return self.holidays
        return calendar_for(self.holiday_country, customer.holiday_subdivision)


@dataclass(frozen=True, slots=True, eq=False)
class RulePack:
    """A compiled, versioned rule pack. Build it with `load_pack`."""

    id: str
    version: str
    base_version: str
    override_id: str | None
    title: str
    country: str
    effective_from: date
    sources: tuple[Source, ...]
    rules: Mapping[str, Rule]
    requires_visit_recording: bool
    record_retention_years: int
    spec: PackSpec = field(repr=False)
    channels: Mapping[Channel, ChannelRules] = field(repr=False)
    exemptions: Mapping[Suppression, frozenset[tuple[Purpose, Channel]]] = field(repr=False)

    def rule(self, key: str) -> Rule:
        """A rule by key ("quiet_hours") or by id ("cn.quiet_hours")."""
        return self.rules[key.removeprefix(f"{self.id}.")]

    def hours(self, channel: Channel) -> tuple[tuple[time, time | None], ...]:
        """The channel's allowed local hours (end None = midnight), empty when not permitted."""
        return tuple(
            (_time(start), None if end == 1440 else _time(end)) for start, end in self.channels[channel].spans
        )

    def exceptions_for(self, suppression: Suppression) -> frozenset[tuple[Purpose, Channel]]:
        """The (purpose, channel) pairs a suppression still allows (documented in the pack)."""
        return self.exemptions[suppression]


def load_pack(
    pack_id: str = DEFAULT_PACK_ID,
    *,
    overrides: Mapping[str, Any] | None = None,
    override_file: str | Path | None = None,
) -> RulePack:
    """Load a shipped pack, optionally with a lender's overrides (mapping and/or TOML file).

    Raises ValueError for an unknown pack, an invalid override or an invalid result.
    """
    layers: list[Mapping[str, Any]] = []
    if override_file is not None:
        with Path(override_file).open("rb") as handle:
            layers.append(tomllib.load(handle))
    if overrides is not None:
        layers.append(overrides)
    return load_layered_pack(pack_id, layers)


def load_layered_pack(pack_id: str, layers: Sequence[Mapping[str, Any]]) -> RulePack:
    """A shipped pack with override layers merged in order (e.g. lender-wide, then product).

    The version names every layer: "2026.1+acme-2026-03+acme-cards-2026-03".
    """
    if not layers:
        return _load_shipped(pack_id)
    document = read_pack_document(pack_id)
    override_ids = []
    for layer in layers:
        document, override_id = merge_override(document, layer)
        override_ids.append(override_id)
    return compile_pack(document, override_id="+".join(override_ids))


@functools.cache
def _load_shipped(pack_id: str) -> RulePack:
    return compile_pack(read_pack_document(pack_id))


def read_pack_document(pack_id: str) -> dict[str, Any]:
    if not _PACK_ID.match(pack_id) or not (PACKS_DIR / f"{pack_id}.toml").is_file():
        raise ValueError(f"unknown rule pack {pack_id!r}; shipped packs: {', '.join(PACK_IDS)}")
    with (PACKS_DIR / f"{pack_id}.toml").open("rb") as handle:
        return tomllib.load(handle)


def merge_override(document: Mapping[str, Any], override: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Deep-merge a lender's override over a pack document; returns it and the override's id."""
    body = {key: value for key, value in override.items() if key not in _OVERRIDE_META}
    override_id = override.get("override_id")
    if override_id is None:
        # An anonymous override still gets a stable, content-derived version label.
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
        override_id = f"local.{digest[:10]}"
    if not isinstance(override_id, str) or not _OVERRIDE_ID.match(override_id):
        raise ValueError("override_id must be 1-64 letters, digits, '.', '_' or '-'")
    for fixed in ("id", "version"):
        if fixed in body and body[fixed] != document.get(fixed):
            raise ValueError(f"an override cannot change the pack's {fixed}; it is versioned by override_id")
    return _deep_merge(document, body), override_id


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if key == "sources" and isinstance(value, list):
            merged[key] = _merge_sources(merged.get(key, []), value)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_sources(base: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {source.get("id"): source for source in base}
    for source in extra:
        by_id[source.get("id")] = {**by_id.get(source.get("id"), {}), **source}
    return list(by_id.values())


def compile_pack(document: Mapping[str, Any], *, override_id: str | None = None) -> RulePack:
    """Validate a pack document and compile it (raises ValueError with the failing field)."""
    try:
        spec = PackSpec.model_validate(document)
    except Exception as error:  # pydantic's ValidationError is a ValueError; keep the message
        raise ValueError(f"invalid rule pack: {error}") from error
    sources = {
        source.id: Source(source.id, source.regulation, source.article, source.note)
        for source in spec.sources
    }
    rules = _compile_rules(spec, sources)
    return RulePack(
        id=spec.id,
        version=spec.version if override_id is None else f"{spec.version}+{override_id}",
        base_version=spec.version,
        override_id=override_id,
        title=spec.title,
        country=spec.country,
        effective_from=spec.effective_from,
        sources=tuple(sources.values()),
        rules=rules,
        requires_visit_recording=spec.records.requires_visit_recording,
        record_retention_years=spec.records.retention_years,
        spec=spec,
        channels={channel: ChannelRules(spec, channel, rules) for channel in Channel},
        exemptions={
            kind: frozenset(
                (exception.purpose, channel)
                for exception in getattr(spec.suppression, kind.value).exceptions
                for channel in exception.channels
            )
            for kind in Suppression
        },
    )


def _compile_rules(spec: PackSpec, sources: Mapping[str, Source]) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    reasons = _reasons(spec)
    for key, rule_spec in spec.rules().items():
        cited = tuple(sources[source_id] for source_id in rule_spec.sources)
        for rule_key in _derived_keys(key):
            rules[rule_key] = Rule(f"{spec.id}.{rule_key}", reasons[rule_key], cited)
    rules["allowed"] = Rule(
        f"{spec.id}.allowed",
        "within contact hours, not a rest day or holiday, under every cap, not suppressed",
        (),
    )
    rules["channel_opt_out"] = Rule(f"{spec.id}.channel_opt_out", reasons["channel_opt_out"], ())
    rules["channel_not_permitted"] = Rule(
        f"{spec.id}.channel_not_permitted", reasons["channel_not_permitted"], rules["quiet_hours"].sources
    )
    return rules


def _derived_keys(key: str) -> tuple[str, ...]:
    """Some spec sections decide under several rule ids (each with its own reason)."""
    return {
        "third_party": ("third_party", "third_party_purpose", "third_party_unreachable"),
        "agents": ("agent_required", "agent_certification", "agent_language"),
        "vulnerable": ("vulnerable_visit", "vulnerable_agent"),
        "records": ("visit_recording",),
    }.get(key, (key,))


def _reasons(spec: PackSpec) -> dict[str, str]:
    """Plain-language reasons, one per rule; never about a person, only about the rule."""
    third = spec.third_party
    breathing = spec.suppression.breathing_space
    return {
        "quiet_hours": "outside the allowed local contact hours",
        "dpd_hours": "outside the hours allowed for this account's days past due",
        "rest_day": "local rest day: no contact on "
        + ", ".join(spec.rest_day.weekdays if spec.rest_day else ()),
        "public_holiday": "local public holiday: no contact",
        "deceased": "customer is deceased: no contact",
        "bankruptcy": "customer is in bankruptcy: no collection contact",
        "breathing_space": f"breathing space ({breathing.days} days; mental-health crisis: treatment + "
        f"{breathing.mental_health_days_after_treatment} days): no creditor contact",
        "cease_contact": "customer asked to cease contact",
        "dispute": "debt is disputed: only the dispute response may be sent",
        "care_hold": "customer is on a care hold: only the care team may contact",
        "channel_opt_out": "customer opted out of this channel",
        "channel_not_permitted": "this channel is not permitted by the pack",
        "third_party": "third parties may not be contacted under this pack",
        "third_party_purpose": "a third party may only be contacted to reach the debtor",
        "third_party_unreachable": f"a third party only after {third.failed_attempts} consecutive failed "
        "attempts to reach the debtor"
        + (" or an invalid own number" if third.invalid_number_suffices else ""),
        "agent_required": "a visit needs an assigned agent",
        "agent_certification": "the agent's training certification is not valid on the local contact date",
        "agent_language": "the agent does not speak the customer's language",
        "vulnerable_visit": "no visit to a customer known or suspected to be particularly vulnerable",
        "vulnerable_agent": "a vulnerable customer may only be contacted by a hardship-trained agent",
        "visit_recording": "a visit outcome needs its audio/video recording reference",
        **{key: f"{cap.description}: the limit of {cap.limit} is reached" for key, cap in spec.caps.items()},
        **{key: pause.description for key, pause in spec.pauses.items()},
    }


def _channel_rule(rule: Rule, channel: Channel, spans: tuple[tuple[int, int], ...]) -> Rule:
    hours = ", ".join(f"{_hhmm(start)}–{_hhmm(end)}" for start, end in spans) or "none"
    return Rule(rule.id, f"{rule.reason} for {channel.value} ({hours})", rule.sources)


def _minute_table(spans: tuple[tuple[int, int], ...]) -> tuple[bytes, tuple[tuple[int, int], ...]]:
    table = bytearray(1440)
    for start, end in spans:
        table[start:end] = b"\x01" * (end - start)
    runs: list[tuple[int, int]] = []
    minute = 0
    while minute < 1440:
        if table[minute]:
            start = minute
            while minute < 1440 and table[minute]:
                minute += 1
            runs.append((start, minute))
        else:
            minute += 1
    return bytes(table), tuple(runs)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _time(minute: int) -> time:
    return time(minute // 60, minute % 60)
