"""Kafka topics of the event catalog. Every topic is keyed by account id."""

from typing import Final

DELINQUENCY: Final = "collections.delinquency.v1"
ASSIGNMENTS: Final = "collections.assignments.v1"
VISIT_OUTCOMES: Final = "collections.visit-outcomes.v1"
FOLLOWUPS: Final = "collections.followups.v1"

ALL_TOPICS: Final = (DELINQUENCY, ASSIGNMENTS, VISIT_OUTCOMES, FOLLOWUPS)
# An input, not part of the catalog's flow: core systems that stream account changes (CDC)
# publish intake's snapshots here; intake consumes it when configured to (docs/intake.md).
CORE_BANKING_ACCOUNTS: Final = "corebanking.accounts.v1"


def dead_letter_topic(consumer_group: str) -> str:
    """One dead-letter topic per consumer group, so a poison message names its victim."""
    return f"collections.dlq.{consumer_group}"
