"""The daily file format: header, encodings, row problems, chunking, and the two validation tiers."""

import csv
import io
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.csv_format import (
    COLUMNS,
    MAX_LINE_BYTES,
    STAGE_COLUMNS,
    ChunkReader,
    Position,
    checked_by_model,
    fast_validator,
    line_validator,
    read_header,
)
from services.intake.segmentation import load_segmentation
from shared.errors import Invalid
from tests.unit.intake.files import csv_bytes, csv_text, row

SEG = load_segmentation()


def read_all(data: bytes, encoding: str = "utf-8", chunk_rows: int = 1000):
    raw = io.BytesIO(data)
    positions, start = read_header(raw, encoding)
    reader = ChunkReader(raw, encoding, positions, start, SEG, chunk_rows)
    chunks = []
    while True:
        chunk = reader.next_chunk()
        chunks.append(chunk)
        if chunk.eof:
            return chunks


def staged(chunks) -> list[dict[str, str]]:
    lines = "".join(c.stage_csv.decode() for c in chunks)
    return [dict(zip(STAGE_COLUMNS, r, strict=True)) for r in csv.reader(io.StringIO(lines))]


def problems(chunks):
    return [p for c in chunks for p in c.problems]


def test_a_valid_file_stages_every_row_with_segmentation() -> None:
    chunks = read_all(csv_bytes([row("LN-1"), row("LN-2", days_past_due="95", flags_vulnerable="true")]))
    rows = staged(chunks)
    assert [r["account_id"] for r in rows] == ["LN-1", "LN-2"]
    assert rows[0]["dpd_bucket"] == "31-60" and rows[0]["delinquent"] == "t"
    assert rows[1]["dpd_bucket"] == "91-180" and rows[1]["vulnerable"] == "t"
    assert problems(chunks) == []
    assert chunks[-1].eof and chunks[-1].end.row == 2


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", False), ("utf-8", True), ("gb18030", False), ("gbk", False)],
)
def test_encodings_decode_chinese_names(encoding, bom) -> None:
    data = csv_bytes([row("LN-1", customer_name="张三丰", address_line1="深圳市福田区 1号")], encoding, bom)
    rows = staged(read_all(data, encoding))
    assert rows[0]["customer_name"] == "张三丰" and rows[0]["address_line1"] == "深圳市福田区 1号"


def test_a_gb18030_file_read_as_utf8_rejects_the_undecodable_rows_and_names_the_column() -> None:
    data = csv_bytes([row("LN-1", customer_name="Ascii Name"), row("LN-2", customer_name="李四")], "gb18030")
    chunks = read_all(data, "utf-8")
    assert [r["account_id"] for r in staged(chunks)] == ["LN-1"]
    [p] = problems(chunks)
    assert (p.row, p.line, p.column) == (2, 3, "customer_name")
    assert "not valid UTF-8" in p.reason and "encoding" in p.reason


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (",".join(COLUMNS[:-1]), "missing flags_vulnerable"),
        (",".join((*COLUMNS, "shoe_size")), "unknown shoe_size"),
        (",".join((*COLUMNS[:-1], "account_id")), "missing flags_vulnerable"),
        ("", "missing account_id"),
    ],
)
def test_a_header_that_is_not_the_documented_one_refuses_the_file(header, message) -> None:
    with pytest.raises(Invalid) as info:
        read_header(io.BytesIO((header + "\n").encode()), "utf-8")
    assert info.value.field == "header" and message in info.value.reason


def test_an_empty_file_and_an_unknown_encoding_are_refused() -> None:
    with pytest.raises(Invalid, match="empty"):
        read_header(io.BytesIO(b""), "utf-8")
    with pytest.raises(Invalid, match="encoding must be one of"):
        read_header(io.BytesIO(b"x\n"), "latin-1")


def test_columns_in_another_order_mean_the_same() -> None:
    shuffled = tuple(reversed(COLUMNS))
    data = csv_text([row("LN-1")], shuffled).encode()
    assert staged(read_all(data)) == staged(read_all(csv_bytes([row("LN-1")])))


def test_malformed_rows_are_reported_by_row_line_and_column_without_values() -> None:
    secret = "+8613912345678"
    rows = [
        row("LN-1"),
        row("LN-2", principal="12,5O"),
        row("LN-3", overdue_amount="-10"),
        row("", customer_id=""),
        row("LN-5", customer_name="x" * 201, customer_phone=secret + "!"),
        row("x'; DROP TABLE accounts;--"),
        row("LN-7", customer_name="Robert'); DROP TABLE accounts;--", address_line1='1 "Quoted", Rd'),
        row("LN-8", overdue_amount="9000.00"),
        row("LN-9", address_lat="22.5", address_lon=""),
        row("LN-10", customer_time_zone="Mars/Olympus", as_of="2026-02-30"),
    ]
    text = csv_text(rows) + "LN-11,too,few\n" + '"LN-12,unterminated\n'
    chunks = read_all(text.encode())
    assert [r["account_id"] for r in staged(chunks)] == ["LN-1", "LN-7"]
    found = {(p.row, p.column) for p in problems(chunks)}
    assert {
        (2, "principal"),
        (3, "overdue_amount"),
        (4, "account_id"),
        (4, "customer_id"),
        (5, "customer_name"),
        (5, "customer_phone"),
        (6, "account_id"),
        (8, "(row)"),
        (9, "address_lat"),
        (10, "customer_time_zone"),
        (10, "as_of"),
        (11, "(row)"),
        (12, "(row)"),
    } <= found
    report = repr(problems(chunks))
    for value in (secret, "DROP TABLE", "12,5O", "Mars/Olympus", "x" * 201):
        assert value not in report


def test_injection_strings_in_free_text_are_data() -> None:
    name = 'Robert\'); DROP TABLE accounts;--\\N \\. "quoted", comma\nnewline'
    rows = staged(read_all(csv_bytes([row("LN-1", customer_name=name)])))
    assert rows[0]["customer_name"] == name


def test_a_nul_byte_rejects_the_row() -> None:
    chunks = read_all(csv_bytes([row("LN-1", customer_name="a\x00b"), row("LN-2")]))
    assert [r["account_id"] for r in staged(chunks)] == ["LN-2"]
    assert problems(chunks)[0].reason == "contains a NUL character"


def test_an_over_long_line_is_one_rejected_row_and_reading_goes_on() -> None:
    data = csv_bytes([row("LN-1", customer_name="n" * (MAX_LINE_BYTES + 10)), row("LN-2")])
    chunks = read_all(data)
    assert [r["account_id"] for r in staged(chunks)] == ["LN-2"]
    [p] = problems(chunks)
    assert p.row == 1 and "longer than" in p.reason


def test_quoted_newlines_keep_row_and_line_numbers_apart() -> None:
    rows = [row("LN-1", address_line1="Building 3\nFloor 2"), row("LN-2", principal="bad")]
    [p] = problems(read_all(csv_bytes(rows)))
    assert (p.row, p.line) == (2, 4)


def test_blank_lines_are_not_rows() -> None:
    text = csv_text([row("LN-1")]) + "\n\n" + csv_text([row("LN-2", principal="bad")]).split("\n", 1)[1]
    [p] = problems(read_all(text.encode()))
    assert p.row == 2


def test_a_chunk_never_holds_an_account_twice() -> None:
    rows = [row("LN-1"), row("LN-2"), row("LN-1", as_of="2026-11-29"), row("LN-3")]
    chunks = read_all(csv_bytes(rows), chunk_rows=10)
    assert [[r["account_id"] for r in staged([c])] for c in chunks] == [["LN-1", "LN-2"], ["LN-1", "LN-3"]]
    assert chunks[0].end.row == 2 and not chunks[0].eof


def test_reading_from_a_chunk_end_continues_exactly_where_it_stopped() -> None:
    rows = [row(f"LN-{i}", principal="bad" if i % 7 == 0 else "12000.00") for i in range(1, 60)]
    rows.insert(20, row("LN-5"))  # a duplicate: the chunk ends early there
    data = csv_bytes(rows, bom=True)
    whole = read_all(data, chunk_rows=8)
    raw = io.BytesIO(data)
    positions, _ = read_header(raw, "utf-8")
    resumed_from: Position = whole[2].end
    reader = ChunkReader(raw, "utf-8", positions, resumed_from, SEG, 8)
    rest = []
    while not rest or not rest[-1].eof:
        rest.append(reader.next_chunk())
    assert staged(rest) == staged(whole[3:])
    assert problems(rest) == problems(whole[3:])


# --- the fast tier means what the model means --------------------------------------------

FAST = fast_validator(SEG)
NUMERIC = {"principal", "outstanding", "overdue_amount", "installment_amount", "last_payment_amount"}


def normalised(values: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in zip(STAGE_COLUMNS, values, strict=True):
        if value and name in NUMERIC:
            out[name] = Decimal(value)
        elif value and name in ("lat", "lon", "priority_score"):
            out[name] = float(value)
        else:
            out[name] = value
    return out


def parse_line(line: str) -> list[str]:
    return next(csv.reader([line]))


BY_LINE = line_validator(SEG)


def check_tiers_agree(values: dict[str, str]) -> None:
    fields = [values[c] for c in COLUMNS]
    fast = FAST(7, fields)
    # The line tier, given the row as a file line: the fast tier's staging exactly, or the
    # cells as the csv reader splits them, or None (the csv reader reads the line).
    line = csv_text([values]).split("\n", 1)[1]
    by_line = BY_LINE(7, line)
    if isinstance(by_line, tuple):
        assert by_line == fast
    elif by_line is not None:
        assert by_line == parse_line(line)
    problems_, model = checked_by_model(7, 8, fields, SEG)
    if fast is None:
        return  # the model decides alone
    assert not problems_, f"fast tier accepted a row the model rejects: {problems_}"
    assert fast[0] == model[0]
    assert normalised(parse_line(fast[1])) == normalised(parse_line(model[1]))


money = st.one_of(
    st.sampled_from(
        ["0", "0.5", "12000.00", "1500.5", "0012.50", "9999999999999999.99", "-1", "1e3", " 1", "1.234", ""]
    ),
    st.decimals(min_value=0, max_value=10**9, places=2).map(str),
)
dates = st.sampled_from(
    ["2026-11-28", "2026-10-01", "2026-12-01", "2026-02-30", "20261128", "", "2026-11-28T00:00:00"]
)
columns = {
    "account_id": st.sampled_from(["LN-1", "a" * 64, "a" * 65, "", "x y", "LN:1.2_3"]),
    "customer_id": st.sampled_from(["C-1", "", "C\x00"]),
    "product": st.sampled_from(["cash_loan", "", "p" * 65, "信用卡"]),
    "currency": st.sampled_from(["CNY", "cny", "US", ""]),
    "as_of": dates,
    "status": st.sampled_from(["", "active", "closed", "ACTIVE"]),
    "principal": money,
    "outstanding": money,
    "overdue_amount": money,
    "installment_amount": money,
    "days_past_due": st.sampled_from(["", "0", "35", "36500", "36501", "05", "-1", "3.0"]),
    "due_date": dates,
    "last_payment_date": dates,
    "last_payment_amount": money,
    "customer_name": st.sampled_from(["", "张三", "n" * 200, "n" * 201]),
    "customer_phone": st.sampled_from(["", "+8613800000000", "138 0000-0000", "call me", "+1"]),
    "customer_language": st.sampled_from(["", "zh-CN", "en", "EN", "zh-Hans"]),
    "customer_time_zone": st.sampled_from(["", "Asia/Shanghai", "America/New_York", "Mars/Olympus"]),
    "address_line1": st.sampled_from(["1 Rd", "", "l" * 201, 'a "b", c']),
    "address_city": st.sampled_from(["Shenzhen", ""]),
    "address_region": st.sampled_from(["", "Guangdong", "r" * 101]),
    "address_postal_code": st.sampled_from(["", "518000", "p" * 21]),
    "address_country": st.sampled_from(["", "CN", "cn", "CHN"]),
    "address_lat": st.sampled_from(["", "22.54", "-90", "90.5", "1e1", "abc"]),
    "address_lon": st.sampled_from(["", "114.06", "-180", "181"]),
    **{
        f"flags_{flag}": st.sampled_from(["", "0", "1", "true", "false", "TRUE", "yes", "2"])
        for flag in ("cease_contact", "dispute", "deceased", "bankruptcy", "vulnerable")
    },
}


@st.composite
def mutated_rows(draw) -> dict[str, str]:
    """A valid row with one to four columns replaced by odd, edge or wrong values."""
    names = draw(st.lists(st.sampled_from(sorted(columns)), min_size=1, max_size=4, unique=True))
    values = row("LN-1")
    values.update({name: draw(columns[name]) for name in names})
    return values


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_rows())
def test_the_fast_tier_accepts_only_what_the_model_accepts_and_stages_the_same(values) -> None:
    check_tiers_agree(values)


@settings(max_examples=300, deadline=None)
@given(
    overdue=st.decimals(min_value=0, max_value=10**6, places=2),
    extra=st.decimals(min_value=0, max_value=10**6, places=2),
    dpd=st.integers(0, 36500),
    installment=st.one_of(st.just(""), st.decimals(min_value=0, max_value=10**5, places=2).map(str)),
    paid_on=st.sampled_from(["", "2026-11-28", "2026-11-01", "2026-09-01"]),
    vulnerable=st.sampled_from(["", "1"]),
)
def test_valid_rows_take_the_fast_tier_and_agree(
    overdue, extra, dpd, installment, paid_on, vulnerable
) -> None:
    values = row(
        "LN-1",
        overdue_amount=str(overdue),
        outstanding=str(overdue + extra),
        days_past_due=str(dpd),
        installment_amount=installment,
        last_payment_date=paid_on,
        flags_vulnerable=vulnerable,
    )
    assert FAST(1, [values[c] for c in COLUMNS]) is not None
    check_tiers_agree(values)


def test_plain_lines_take_the_line_tier_and_others_the_csv_reader() -> None:
    rows = [
        row("LN-1"),
        row("LN-2", customer_name='Quoted "name", with comma'),
        row("LN-3", overdue_amount="9000.00"),  # plain, but overdue above outstanding
        row("LN-4", principal="0012.50"),  # the fast tier's spelling, not the line tier's
        row("LN-5", status="", customer_language="", customer_time_zone="", address_country=""),
        row(
            "LN-6",
            days_past_due="",
            due_date="2026-10-01",
            last_payment_date="2026-11-20",
            last_payment_amount="100",
            flags_vulnerable="true",
        ),
    ]
    lines = csv_text(rows).splitlines(keepends=True)[1:]
    verdicts = [BY_LINE(i + 1, line) for i, line in enumerate(lines)]
    assert isinstance(verdicts[0], tuple) and verdicts[1] is None
    assert verdicts[2] == parse_line(lines[2]) and verdicts[3] is None
    assert isinstance(verdicts[4], tuple) and isinstance(verdicts[5], tuple)
    for i in (0, 4, 5):
        assert verdicts[i] == FAST(i + 1, [rows[i][c] for c in COLUMNS])
    chunks = read_all((csv_text(rows)).replace("\n", "\r\n").encode())
    assert [r["account_id"] for r in staged(chunks)] == ["LN-1", "LN-2", "LN-4", "LN-5", "LN-6"]
    assert [(p.row, p.line, p.column) for p in problems(chunks)] == [(3, 4, "(row)")]
