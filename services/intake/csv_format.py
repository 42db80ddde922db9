"""The daily account file: its fixed CSV schema, streamed, validated row by row (docs/intake.md).

A file is read one physical line at a time (bounded memory; byte offsets for resuming),
decoded with the encoding the caller named, parsed by the csv module and validated. Valid
rows come out as staging CSV for PostgreSQL's COPY, invalid ones as (row, line, column,
reason) problems that never quote a value: values may be personal data.

Validation has two tiers with one meaning. `AccountSnapshot` (the pydantic model the JSON
API uses) is the definition. A hand-written check accepts only the plain, canonical
spellings that the model certainly accepts and turns them into the same staged values;
anything else (a bad value, or an unusual spelling like "1e3" or "TRUE") goes through the
model, which reports the errors or normalises the value. Ahead of both, for files in the
documented column order, `line_validator` takes a plain physical line (no quotes, the
canonical spellings) whole: one regular expression checks every cell's spelling at once, and
it stages exactly what the hand-written check would; any other line goes to the csv reader.
tests/unit/intake/test_csv_format.py checks the tiers agree.
"""

from __future__ import annotations

import csv
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import IO, Any

import orjson
from pydantic import TypeAdapter, ValidationError

from services.intake.models import TIME_ZONES, AccountSnapshot
from services.intake.segmentation import Segmentation, days_between
from shared.errors import Invalid

COLUMNS: tuple[str, ...] = (
    "account_id",
    "customer_id",
    "product",
    "currency",
    "as_of",
    "status",
    "principal",
    "outstanding",
    "overdue_amount",
    "installment_amount",
    "days_past_due",
    "due_date",
    "last_payment_date",
    "last_payment_amount",
    "customer_name",
    "customer_phone",
    "customer_language",
    "customer_time_zone",
    "address_line1",
    "address_city",
    "address_region",
    "address_postal_code",
    "address_country",
    "address_lat",
    "address_lon",
    "flags_cease_contact",
    "flags_dispute",
    "flags_deceased",
    "flags_bankruptcy",
    "flags_vulnerable",
)
# Columns of the snapshot's nested objects: customer_name is customer.name, and so on.
_NESTED: dict[str, tuple[str, str]] = {
    column: (prefix, column.removeprefix(prefix + "_"))
    for column in COLUMNS
    for prefix in ("customer", "address", "flags")
    if column.startswith(prefix + "_") and column != "customer_id"
}
_FLAGS = ("cease_contact", "dispute", "deceased", "bankruptcy", "vulnerable")

# What `COPY import_stage` receives, in this order (repository.STAGE_COLUMNS mirrors it).
STAGE_COLUMNS: tuple[str, ...] = (
    "row_no",
    "account_id",
    "customer_id",
    "product",
    "currency",
    "as_of",
    "status",
    "principal",
    "outstanding",
    "overdue_amount",
    "installment_amount",
    "last_payment_date",
    "last_payment_amount",
    "customer_name",
    "phone",
    "language",
    "time_zone",
    "address_line1",
    "address_city",
    "address_region",
    "address_postal_code",
    "address_country",
    "lat",
    "lon",
    "cease_contact",
    "dispute",
    "deceased",
    "bankruptcy",
    "vulnerable",
    "dpd",
    "delinquent",
    "dpd_bucket",
    "priority_score",
    "priority_factors",
)

# The parameter's values and the codec each one decodes with. GB2312 files are GBK files.
ENCODINGS: dict[str, str] = {"utf-8": "utf-8", "gb18030": "gb18030", "gbk": "gbk"}
MAX_LINE_BYTES = 64 * 1024
ROW = "(row)"

Staged = tuple[str, str]  # (account id, staging CSV line)
_NOTHING: Staged = ("", "")
_NO_PROBLEMS: list[RowProblem] = []  # never appended to

_snapshot = TypeAdapter(AccountSnapshot)


def encoding_name(encoding: str) -> str:
    """The parameter's canonical spelling (part of an import's identity): `UTF_8` is `utf-8`."""
    name = encoding.strip().lower().replace("_", "-")
    if name not in ENCODINGS:
        raise Invalid(f"encoding must be one of {', '.join(ENCODINGS)}", "encoding")
    return name


def codec_for(encoding: str) -> str:
    return ENCODINGS[encoding_name(encoding)]


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    line: int
    column: str
    reason: str


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading stands: rows and lines consumed, and the byte offset of what comes next."""

    row: int = 0
    line: int = 0
    offset: int = 0


@dataclass(slots=True)
class Chunk:
    stage_csv: bytes
    accepted: int
    problems: list[RowProblem]
    rejected_rows: int
    end: Position
    eof: bool
    accounts: set[str]  # the accounts of the accepted rows


class _Lines:
    """Physical lines, decoded one at a time. Counts lines and bytes; remembers bad lines."""

    def __init__(self, raw: IO[bytes], codec: str, start: Position) -> None:
        self._raw = raw
        self._codec = codec
        self._label = "UTF-8" if codec == "utf-8" else codec.upper()
        self.line = start.line
        self.offset = start.offset
        self.problems: list[tuple[int, str]] = []
        self._pending: bytes | None = None
        self.readline = raw.readline

    def __iter__(self) -> _Lines:
        return self

    def push_back(self, raw: bytes) -> None:
        """A physical line read by the line tier, handed to the csv reader instead (not counted)."""
        self._pending = raw

    def __next__(self) -> str:
        if self._pending is not None:
            raw, self._pending = self._pending, None
        else:
            raw = self._raw.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.line += 1
        self.offset += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            self._skip_rest_of_line()
            self.problems.append((self.line, f"line longer than {MAX_LINE_BYTES} bytes"))
            return "\n"
        try:
            return raw.decode(self._codec)
        except UnicodeDecodeError:
            self.problems.append((self.line, f"not valid {self._label} text (check the encoding parameter)"))
            return raw.decode(self._codec, "replace")

    def _skip_rest_of_line(self) -> None:
        while True:
            rest = self._raw.readline(MAX_LINE_BYTES)
            self.offset += len(rest)
            if not rest or rest.endswith(b"\n"):
                return


def read_header(raw: IO[bytes], encoding: str) -> tuple[list[int], Position]:
    """Check the header row; returns each documented column's index in the file and where rows start."""
    lines = _Lines(raw, codec_for(encoding), Position())
    first = next(lines, None)
    if first is None:
        raise Invalid("the file is empty: expected a header row", "header")
    if lines.problems:
        raise Invalid(lines.problems[0][1], "header")
    names = next(csv.reader([first.lstrip("\ufeff")]), [])
    names = [n.strip() for n in names]
    unknown = sorted(set(names) - set(COLUMNS))
    missing = [c for c in COLUMNS if c not in names]
    if unknown or missing or len(names) != len(COLUMNS):
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing)}")
        if unknown:
            detail.append(f"unknown {', '.join(unknown[:10])}")
        if not detail:
            detail.append("a column is named twice")
        raise Invalid(f"header must name the documented columns: {'; '.join(detail)}", "header")
    return [names.index(c) for c in COLUMNS], Position(0, lines.line, lines.offset)


class ChunkReader:
    """Reads rows from `start` and hands them out in chunks of at most `chunk_rows` rows.

    A chunk never holds the same account twice: a second snapshot of an account starts the
    next chunk, so each chunk can be diffed as a set and the file still applies in order.
    """

    def __init__(
        self,
        raw: IO[bytes],
        encoding: str,
        positions: Sequence[int],
        start: Position,
        seg: Segmentation,
        chunk_rows: int,
    ) -> None:
        raw.seek(start.offset)
        self._lines = _Lines(raw, codec_for(encoding), start)
        self._reader = csv.reader(self._lines, strict=True)
        identity = list(positions) == list(range(len(COLUMNS)))
        self._reorder: Callable[[list[str]], Sequence[str]] | None = (
            None if identity else operator.itemgetter(*positions)
        )
        self._validate = fast_validator(seg)
        # Rows of a file in the documented column order take the line tier first.
        self._by_line = line_validator(seg) if identity else None
        self._codec = codec_for(encoding)
        self._seg = seg
        self._chunk_rows = chunk_rows
        self._row = start.row
        self._carried: Staged | None = None
        self._eof = False

    def next_chunk(self) -> Chunk:
        out: list[str] = []
        write = out.append
        problems: list[RowProblem] = []
        seen: set[str] = set()
        accepted = rejected_rows = 0
        lines = self._lines
        if self._carried is not None:
            account_id, line = self._carried
            self._carried = None
            seen.add(account_id)
            write(line)
            accepted = 1
        by_line, codec, readline = self._by_line, self._codec, lines.readline
        while accepted + rejected_rows < self._chunk_rows:
            before = (self._row, lines.line, lines.offset)
            record = None
            if by_line is not None:
                # The line tier: one plain physical line, one row (see line_validator).
                raw = readline(MAX_LINE_BYTES + 1)
                if not raw:
                    self._eof = True
                    break
                try:
                    fields_or_staged = by_line(self._row + 1, raw.decode(codec))
                except UnicodeDecodeError:
                    fields_or_staged = None
                if fields_or_staged is None:
                    lines.push_back(raw)  # not plain: the csv reader reads it
                else:
                    self._row += 1
                    lines.line += 1
                    lines.offset += len(raw)
                    if isinstance(fields_or_staged, list):  # plain, but the row needs a closer look
                        record = self._check(fields_or_staged, lines.line)
                    else:
                        record = _NO_PROBLEMS, fields_or_staged
            if record is None:
                record = self._next_record()
            if record is None:
                self._eof = True
                break
            row_problems, staged = record
            if row_problems:
                problems.extend(row_problems)
                rejected_rows += 1
            elif staged[0] in seen:
                # The chunk ends before this row; it opens the next one.
                self._carried = staged
                return Chunk(
                    "".join(out).encode(), accepted, problems, rejected_rows, Position(*before), False, seen
                )
            else:
                seen.add(staged[0])
                write(staged[1])
                accepted += 1
        end = Position(self._row, lines.line, lines.offset)
        return Chunk("".join(out).encode(), accepted, problems, rejected_rows, end, self._eof, seen)

    def _next_record(self) -> tuple[list[RowProblem], Staged] | None:
        """The next non-blank record: (problems, staged row); None at the end of the file."""
        lines = self._lines
        while True:
            first_line = lines.line + 1
            try:
                fields = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                # An unbalanced quote can swallow the lines after it: say how many went.
                self._row += 1
                lines.problems.clear()
                span = f" (lines {first_line}-{lines.line})" if lines.line > first_line else ""
                return [RowProblem(self._row, first_line, ROW, f"malformed CSV: {exc}{span}")], _NOTHING
            if not fields and not lines.problems:
                continue  # a blank line is not a record
            self._row += 1
            if lines.problems:
                return self._line_problems(fields, first_line), _NOTHING
            return self._check(fields, first_line)

    def _line_problems(self, fields: list[str], first_line: int) -> list[RowProblem]:
        reason = self._lines.problems[0][1]
        self._lines.problems.clear()
        column = next(
            (name for name, value in zip(COLUMNS, self._ordered(fields), strict=False) if "\ufffd" in value),
            ROW,
        )
        return [RowProblem(self._row, first_line, column, reason)]

    def _ordered(self, fields: list[str]) -> Sequence[str]:
        if len(fields) != len(COLUMNS) or self._reorder is None:
            return fields
        return self._reorder(fields)

    def _check(self, fields: list[str], first_line: int) -> tuple[list[RowProblem], Staged]:
        if len(fields) != len(COLUMNS):
            reason = f"expected {len(COLUMNS)} fields, found {len(fields)}"
            return [RowProblem(self._row, first_line, ROW, reason)], _NOTHING
        ordered = self._ordered(fields)
        staged = self._validate(self._row, ordered)
        if staged is not None:
            return [], staged
        if any("\x00" in value for value in ordered):
            return [RowProblem(self._row, first_line, ROW, "contains a NUL character")], _NOTHING
        return checked_by_model(self._row, first_line, ordered, self._seg)


# --- the model tier -------------------------------------------------------------------


def row_to_document(fields: Sequence[str]) -> dict[str, Any]:
    """A CSV row as the JSON API's snapshot document: empty cells are absent values."""
    doc: dict[str, Any] = {"customer": {}, "address": {}, "flags": {}}
    for name, value in zip(COLUMNS, fields, strict=True):
        if value == "":
            continue
        if name in _NESTED:
            nested, key = _NESTED[name]
            doc[nested][key] = value
        else:
            doc[name] = value
    return doc


def column_of(loc: tuple[int | str, ...]) -> str:
    """A validation error's location as the file's column name."""
    if not loc:
        return ROW
    if loc == ("address",):
        return "address_lat"
    return "_".join(str(part) for part in loc)


def checked_by_model(
    row: int, line: int, fields: Sequence[str], seg: Segmentation
) -> tuple[list[RowProblem], Staged]:
    try:
        snap = _snapshot.validate_python(row_to_document(fields))
    except ValidationError as exc:
        problems = [RowProblem(row, line, column_of(err["loc"]), err["msg"]) for err in exc.errors()]
        return problems, _NOTHING
    return [], (snap.account_id, stage_line(stage_snapshot(row, snap, seg)))


def stage_snapshot(row: int, snap: AccountSnapshot, seg: Segmentation) -> list[str]:
    """A validated snapshot's staging values (what the fast tier produces for canonical input)."""
    c, a, f = snap.customer, snap.address, snap.flags
    bucket, score, factors = seg.contributions(
        snap.dpd,
        snap.overdue_amount,
        f.vulnerable,
        snap.installment_amount,
        days_between(snap.as_of, snap.last_payment_date),
    )
    return [
        str(row),
        snap.account_id,
        snap.customer_id,
        snap.product,
        snap.currency,
        snap.as_of.isoformat(),
        snap.status,
        f"{snap.principal:f}",
        f"{snap.outstanding:f}",
        f"{snap.overdue_amount:f}",
        _decimal_text(snap.installment_amount),
        _date_text(snap.last_payment_date),
        _decimal_text(snap.last_payment_amount),
        c.name or "",
        c.phone or "",
        c.language,
        c.time_zone,
        a.line1,
        a.city,
        a.region or "",
        a.postal_code or "",
        a.country,
        "" if a.lat is None else repr(a.lat),
        "" if a.lon is None else repr(a.lon),
        *("t" if getattr(f, flag) else "f" for flag in _FLAGS),
        str(snap.dpd),
        "t" if snap.is_delinquent else "f",
        bucket,
        repr(score),
        factors_json(factors),
    ]


def factors_json(factors: Sequence[tuple[str, str, float]]) -> str:
    return orjson.dumps([{"factor": f, "input": i, "points": p} for f, i, p in factors]).decode()


# Staging values that are free text (the rest are checked codes, numbers and dates).
_FREE_TEXT = (3, 13, 17, 18, 19, 20)
_FACTORS = 33


def stage_line(values: list[str]) -> str:
    """One CSV line for COPY (unquoted empty = NULL)."""
    for i in _FREE_TEXT:
        value = values[i]
        if '"' in value or "," in value or "\n" in value or "\r" in value:
            values[i] = '"' + value.replace('"', '""') + '"'
    values[_FACTORS] = '"' + values[_FACTORS].replace('"', '""') + '"'
    return ",".join(values) + "\n"


def _decimal_text(value: Decimal | None) -> str:
    return "" if value is None else f"{value:f}"


def _date_text(value: date | None) -> str:
    return "" if value is None else value.isoformat()


# --- the fast tier --------------------------------------------------------------------

_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_MONEY = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,2})?")
_DPD = re.compile(r"0|[1-9][0-9]{0,4}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _cached_date(dates: dict[str, date | None], text: str) -> date | None:
    """A `YYYY-MM-DD` date (None if not one), remembered: a file holds few distinct dates."""
    if text in dates:
        return dates[text]
    parsed = None
    if _DATE.fullmatch(text):
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            parsed = None
    if len(dates) < 100_000:
        dates[text] = parsed
    return parsed


_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,30}")
_LANGUAGE = re.compile(r"[a-z]{2}(?:-[A-Za-z]{2,4})?")
_UPPER2 = re.compile(r"[A-Z]{2}")
_UPPER3 = re.compile(r"[A-Z]{3}")
_COORD = re.compile(r"-?[0-9]{1,3}(?:\.[0-9]{1,15})?")
_BOOLS = {"": "f", "0": "f", "1": "t", "false": "f", "true": "t"}


def fast_validator(seg: Segmentation) -> Callable[[int, Sequence[str]], Staged | None]:
    """(account id, staging line) for a canonical, valid row; None when the model must decide.

    One closure per import: the caches of dates and codes live as long as the file. The
    checks are split by topic; each answers None as soon as the model has to look.
    """
    dates: dict[str, date | None] = {}
    known: dict[str, bool] = {}
    money, ident, dpd_re, phone_re = _MONEY.fullmatch, _ID.fullmatch, _DPD.fullmatch, _PHONE.fullmatch
    coord, bools, zones, contributions = _COORD.fullmatch, _BOOLS, TIME_ZONES, seg.contributions

    def parse_date(text: str) -> date | None:
        return _cached_date(dates, text)

    def is_known(kind: str, text: str, pattern: re.Pattern[str]) -> bool:
        """Currencies, languages, countries repeat: remember the verdicts (bounded)."""
        key = kind + text
        verdict = known.get(key)
        if verdict is None:
            verdict = pattern.fullmatch(text) is not None
            if len(known) < 10_000:
                known[key] = verdict
        return verdict

    def amounts(
        principal: str, outstanding: str, overdue: str, installment: str, paid: str
    ) -> tuple[Decimal, Decimal | None] | None:
        """(overdue, instalment): plain amounts, overdue not above outstanding."""
        if not (money(principal) and money(outstanding) and money(overdue)):
            return None
        if (installment and not money(installment)) or (paid and not money(paid)):
            return None
        overdue_amount = Decimal(overdue)
        if overdue_amount > Decimal(outstanding):
            return None
        return overdue_amount, Decimal(installment) if installment else None

    def days(
        as_of_text: str, due_text: str, paid_on_text: str, dpd_text: str, overdue: Decimal
    ) -> tuple[date, date | None, int] | None:
        """(as-of, last payment date, days past due: given, or counted from the due date)."""
        as_of = parse_date(as_of_text)
        if as_of is None:
            return None
        due = parse_date(due_text) if due_text else None
        if due_text and (due is None or (due > as_of and overdue > 0)):
            return None
        paid_on = parse_date(paid_on_text) if paid_on_text else None
        if paid_on_text and paid_on is None:
            return None
        if dpd_text:
            dpd = int(dpd_text) if dpd_re(dpd_text) else 36501
            return (as_of, paid_on, dpd) if dpd <= 36500 else None
        return as_of, paid_on, max((as_of - due).days, 0) if due is not None and overdue > 0 else 0

    def reachable(fields: Sequence[str]) -> bool:
        """Contact data and address: lengths, patterns, known zones, both coordinates or none."""
        name, phone, language, time_zone, line1, city, region, postal_code, country, lat, lon = fields
        if len(name) > 200 or (phone and not phone_re(phone)):
            return False
        if (language and not is_known("lang", language, _LANGUAGE)) or (time_zone and time_zone not in zones):
            return False
        if not (
            0 < len(line1) <= 200 and 0 < len(city) <= 100 and len(region) <= 100 and len(postal_code) <= 20
        ):
            return False
        if country and not is_known("cc", country, _UPPER2):
            return False
        if (lat or lon) and not (
            coord(lat) and coord(lon) and -90 <= float(lat) <= 90 and -180 <= float(lon) <= 180
        ):
            return False
        return not any("\x00" in text for text in (name, line1, city, region, postal_code))

    def validate(row: int, f: Sequence[str]) -> Staged | None:
        account_id, customer_id, product, currency, as_of_text, status = f[:6]
        if not (
            ident(account_id) and ident(customer_id) and 0 < len(product) <= 64 and "\x00" not in product
        ):
            return None
        if status not in ("", "active", "closed") or not is_known("ccy", currency, _UPPER3):
            return None
        money_ = amounts(f[6], f[7], f[8], f[9], f[13])
        if money_ is None:
            return None
        overdue, installment = money_
        when = days(as_of_text, f[11], f[12], f[10], overdue)
        if when is None or not reachable(f[14:25]):
            return None
        flags = [bools.get(v) for v in f[25:30]]
        if None in flags:
            return None
        as_of, paid_on, dpd = when
        status = status or "active"
        bucket, score, factors = contributions(
            dpd, overdue, flags[4] == "t", installment, days_between(as_of, paid_on)
        )
        delinquent = status == "active" and overdue > 0 and dpd > 0
        staged = [
            str(row),
            account_id,
            customer_id,
            product,
            currency,
            as_of_text,
            status,
            f[6],
            f[7],
            f[8],
            f[9],
        ]
        staged += [f[12], f[13], f[14], f[15], f[16] or "zh-CN", f[17] or "Asia/Shanghai", *f[18:22]]
        staged += [f[22] or "CN", f[23], f[24], *flags]  # type: ignore[list-item]
        staged += [str(dpd), "t" if delinquent else "f", bucket, repr(score), factors_json(factors)]
        return account_id, stage_line(staged)

    return validate


# --- the line tier --------------------------------------------------------------------

_TEXT = '[^,"\\r\\n\\x00]'
_PLAIN_MONEY = "(?:0|[1-9][0-9]{0,15})(?:\\.[0-9]{1,2})?"
_PLAIN_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
# One pattern per column, in the documented order: the plain spellings the fast tier accepts
# (a subset of them: no leading zeros, no quotes), each cell a group.
_LINE_CELLS = (
    "[A-Za-z0-9_.:-]{1,64}",  # account_id
    "[A-Za-z0-9_.:-]{1,64}",  # customer_id
    _TEXT + "{1,64}",  # product
    "[A-Z]{3}",  # currency
    _PLAIN_DATE,  # as_of
    "active|closed|",  # status
    _PLAIN_MONEY,  # principal
    _PLAIN_MONEY,  # outstanding
    _PLAIN_MONEY,  # overdue_amount
    _PLAIN_MONEY + "|",  # installment_amount
    "0|[1-9][0-9]{0,4}|",  # days_past_due
    _PLAIN_DATE + "|",  # due_date
    _PLAIN_DATE + "|",  # last_payment_date
    _PLAIN_MONEY + "|",  # last_payment_amount
    _TEXT + "{0,200}",  # customer_name
    "\\+?[0-9][0-9 -]{4,30}|",  # customer_phone
    "[a-z]{2}(?:-[A-Za-z]{2,4})?|",  # customer_language
    _TEXT + "{0,64}",  # customer_time_zone (a known zone: checked after)
    _TEXT + "{1,200}",  # address_line1
    _TEXT + "{1,100}",  # address_city
    _TEXT + "{0,100}",  # address_region
    _TEXT + "{0,20}",  # address_postal_code
    "[A-Z]{2}|",  # address_country
    "-?[0-9]{1,3}(?:\\.[0-9]{1,15})?|",  # address_lat
    "-?[0-9]{1,3}(?:\\.[0-9]{1,15})?|",  # address_lon
    *(["0|1|true|false|"] * 5),  # flags
)
_LINE = re.compile(",".join(f"({cell})" for cell in _LINE_CELLS) + "\\r?\\n?")
_FLAG = {"": "f", "0": "f", "1": "t", "false": "f", "true": "t"}
assert len(_LINE_CELLS) == len(COLUMNS)


def line_validator(seg: Segmentation) -> Callable[[int, str], Staged | list[str] | None]:
    """The fast tier for a whole physical line of a file in the documented column order.

    Answers the staged row for a plain, valid line; the line's cells when the line is plain
    (cells as the csv reader splits them) but some value needs the fast tier's or the model's
    closer look (a date that does not exist, overdue above outstanding, an unknown zone…);
    None when the line is not plain (quotes, other spellings, a wrong cell count): the csv
    reader reads it. One regular expression checks the cells' spellings at once, so a plain
    row costs a fraction of the cell-by-cell checks; what it stages is what `fast_validator`
    stages (tests/unit/intake/test_csv_format.py compares them).
    """
    match = _LINE.fullmatch
    dates: dict[str, date | None] = {}
    zones, flag, bucket_of, rules = TIME_ZONES, _FLAG, seg.bucket, seg.rules
    log10, amount_weight, arrears_weight = math.log10, rules.amount_weight, rules.arrears_weight
    arrears_cap, recent_days, recent_points = (
        rules.arrears_cap,
        rules.recent_payment_days,
        rules.recent_payment_points,
    )
    penalty = rules.vulnerable_penalty
    # The factors as `factors_json` writes them, already quoted for the staging CSV (quotes
    # doubled): the bucket's factor is the same for every row of the bucket.
    weights = {b.name: round(b.weight, 3) for b in seg.buckets}
    bucket_factor: dict[str, tuple[float, str]] = {}
    flag_runs: dict[tuple[str, ...], str] = {}  # the five flag cells as staged, by spelling
    recent = _csv_quoted(factors_json([("recent_payment", "0d", recent_points)]))[2:-2]
    recent_head, recent_tail = recent.split("0d", 1)
    vulnerable_factor = _csv_quoted(factors_json([("vulnerable", "true", -penalty)]))[2:-2]

    def parse_date(text: str) -> date | None:
        return _cached_date(dates, text)

    def validate(row: int, line: str) -> Staged | list[str] | None:
        m = match(line)
        if m is None:
            return None
        f = m.groups()
        (account_id, customer_id, product, currency, as_of_text, status, principal, outstanding) = f[:8]
        overdue_text, installment_text, dpd_text, due_text, paid_on_text, paid_text = f[8:14]
        time_zone, lat, lon = f[17], f[23], f[24]
        # Amounts of at most 15 characters compare exactly as floats; longer ones as decimals.
        amount = float(overdue_text)
        if len(overdue_text) < 16 and len(outstanding) < 16:
            if amount > float(outstanding):
                return list(f)
        elif Decimal(overdue_text) > Decimal(outstanding):
            return list(f)
        as_of = parse_date(as_of_text)
        if as_of is None or (time_zone and time_zone not in zones):
            return list(f)
        if due_text:
            due = parse_date(due_text)
            if due is None or (due > as_of and amount > 0):
                return list(f)
        else:
            due = None
        paid_on = None
        if paid_on_text:
            paid_on = parse_date(paid_on_text)
            if paid_on is None:
                return list(f)
        if dpd_text:
            dpd = int(dpd_text)
            if dpd > 36500:
                return list(f)
        else:
            dpd = max((as_of - due).days, 0) if due is not None and amount > 0 else 0
        if (lat or lon) and not (lat and lon and -90 <= float(lat) <= 90 and -180 <= float(lon) <= 180):
            return list(f)
        status = status or "active"
        vulnerable = flag[f[29]]
        # Segmentation.contributions, term by term in the same order (the same floats), with
        # the factors written straight into their CSV-quoted JSON.
        bucket = bucket_of(dpd)
        known = bucket_factor.get(bucket)
        if known is None:
            weight = weights.get(bucket, 0.0)
            text = _csv_quoted(factors_json([("dpd_bucket", bucket, weight)]))[2:-2]
            known = bucket_factor[bucket] = (weight, text)
        weight, factors = known
        amount_points = round(amount_weight * log10(1 + amount), 3)
        cents = (
            overdue_text if "." not in overdue_text else overdue_text.ljust(overdue_text.index(".") + 3, "0")
        )
        if "." not in cents:
            cents += ".00"
        factors += f',{{""factor"":""overdue_amount"",""input"":""{cents}"",""points"":{amount_points!r}}}'
        score = weight + amount_points
        if installment_text and amount > 0 and (installment := float(installment_text)) > 0:
            depth = amount / installment
            points = round(arrears_weight * min(depth, arrears_cap), 3)
            factors += (
                f',{{""factor"":""overdue_installments"",""input"":""{depth:.1f}"",""points"":{points!r}}}'
            )
            score += points
        if paid_on is not None and 0 <= (since := (as_of - paid_on).days) <= recent_days:
            factors += f",{recent_head}{since}d{recent_tail}"
            score += recent_points
        if vulnerable == "t":
            factors += "," + vulnerable_factor
            score -= penalty
        delinquent = "t" if status == "active" and amount > 0 and dpd > 0 else "f"
        tail = f'{dpd},{delinquent},{bucket},{round(score, 3)!r},"[{factors}]"\n'
        if f[5] and f[16] and time_zone and f[22]:
            # No defaults to fill in: the staged cells are runs of the line's own.
            flags = flag_runs.get(f[25:])
            if flags is None:
                flags = flag_runs[f[25:]] = ",".join(flag[v] for v in f[25:])
            return account_id, (f"{row},{line[: m.end(10)]},{line[m.start(13) : m.end(25)]},{flags},{tail}")
        return account_id, (
            f"{row},{account_id},{customer_id},{product},{currency},{as_of_text},{status},"
            f"{principal},{outstanding},{overdue_text},{installment_text},{paid_on_text},{paid_text},"
            f"{f[14]},{f[15]},{f[16] or 'zh-CN'},{time_zone or 'Asia/Shanghai'},{f[18]},{f[19]},"
            f"{f[20]},{f[21]},{f[22] or 'CN'},{lat},{lon},{flag[f[25]]},{flag[f[26]]},{flag[f[27]]},"
            f"{flag[f[28]]},{vulnerable},{tail}"
        )

    return validate


def _csv_quoted(text: str) -> str:
    """`text` as one quoted CSV cell."""
    return '"' + text.replace('"', '""') + '"'
