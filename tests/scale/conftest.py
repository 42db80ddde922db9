"""Scale tests run several service processes in one consumer group on their own dev broker."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "multi_member: several members in one consumer group (needs a broker whose groups survive"
        " rebalances under commits; deselected on noida-db)",
    )
