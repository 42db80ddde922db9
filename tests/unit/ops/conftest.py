"""Fixtures of the ops tests: `exported`, the spans a test produced (tests/unit/ops/spans.py)."""

from tests.unit.ops.spans import exported  # noqa: F401
