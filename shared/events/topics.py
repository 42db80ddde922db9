"""Kafka topics of the event catalog. Every topic is keyed by account id."""

from typing import Final

DELINQUENCY: Final = "collections.delinquency.v1"
ASSIGNMENTS: Final = "collections.assignments.v1"
VISIT_OUTCOMES: Final = "collections.visit-outcomes.v1"
FOLLOWUPS: Final = "collections.followups.v1"

ALL_TOPICS: Final = (DELINQUENCY, ASSIGNMENTS, VISIT_OUTCOMES, FOLLOWUPS)


def dead_letter_topic(consumer_group: str) -> str:
    """One dead-letter topic per consumer group, so a poison message names its victim."""
    return f"collections.dlq.{consumer_group}"
