"""Personal data in API listings: shown to the roles that need it, masked for everyone else.

Masking keeps what an operator needs to recognise a record without exposing the person:
the last digits of a phone number, the first character of a name, the city but not the
street, coordinates rounded to about a kilometre.
"""

from __future__ import annotations

# Core banking owns the data it sent (reconciliation); the care team phones customers in
# hardship. Supervisors, ops and auditors work with the account, not the person.
CONTACT_ROLES = frozenset({"core_banking", "care"})
READER_ROLES = ("core_banking", "care", "supervisor", "ops", "auditor")


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = [c for c in phone if c.isdigit()]
    return "*" * max(len(digits) - 4, 0) + "".join(digits[-4:])


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * min(max(len(name) - 1, 1), 8)


def mask_text(text: str | None) -> str | None:
    return None if text is None else "***"


def round_coordinate(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
