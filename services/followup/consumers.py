"""Which events follow-up consumes, and the handler of each."""

from services.followup import handlers
from shared.events import topics
from shared.runtime import ConsumerSpec

CONSUMERS = [
    ConsumerSpec(
        group_id="followup.delinquency",
        topics=[topics.DELINQUENCY],
        handlers={"delinquency.opened": handlers.on_delinquency_opened},
    ),
    ConsumerSpec(
        group_id="followup.outcomes",
        topics=[topics.VISIT_OUTCOMES],
        handlers={"visit.outcome_recorded": handlers.on_outcome_recorded},
    ),
]
