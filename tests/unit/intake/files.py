"""Builders of daily account files (CSV) for the intake tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from services.intake.csv_format import COLUMNS


def row(account_id: str, **overrides: Any) -> dict[str, str]:
    """A valid, delinquent account row; keyword arguments replace columns."""
    values: dict[str, Any] = {
        "account_id": account_id,
        "customer_id": f"C-{account_id}",
        "product": "cash_loan",
        "currency": "CNY",
        "as_of": "2026-11-28",
        "status": "active",
        "principal": "12000.00",
        "outstanding": "8000.00",
        "overdue_amount": "1500.00",
        "installment_amount": "600.00",
        "days_past_due": "35",
        "due_date": "",
        "last_payment_date": "",
        "last_payment_amount": "",
        "customer_name": f"Customer {account_id}",
        "customer_phone": "+8613800000000",
        "customer_language": "zh-CN",
        "customer_time_zone": "Asia/Shanghai",
        "address_line1": "1 Example Rd",
        "address_city": "Shenzhen",
        "address_region": "Guangdong",
        "address_postal_code": "518000",
        "address_country": "CN",
        "address_lat": "22.54",
        "address_lon": "114.06",
        "flags_cease_contact": "",
        "flags_dispute": "",
        "flags_deceased": "",
        "flags_bankruptcy": "",
        "flags_vulnerable": "",
    }
    values.update(overrides)
    return {k: "" if v is None else str(v) for k, v in values.items()}


def csv_text(rows: Iterable[Mapping[str, str] | list[str]], columns: tuple[str, ...] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([r[c] for c in columns] if isinstance(r, Mapping) else r)
    return out.getvalue()


def csv_bytes(
    rows: Iterable[Mapping[str, str] | list[str]], encoding: str = "utf-8", bom: bool = False
) -> bytes:
    data = csv_text(rows).encode(encoding)
    return (b"\xef\xbb\xbf" if bom else b"") + data
