"""Which events the visits service consumes, and the handler of each."""

from services.visits import handlers
from shared.events import topics
from shared.runtime import ConsumerSpec

CONSUMERS = [
    ConsumerSpec(
        group_id="visits.assignments",
        topics=[topics.ASSIGNMENTS],
        handlers={
            "visit.assigned": handlers.on_visit_assigned,
            "visit.rescheduled": handlers.on_visit_rescheduled,
            "visit.cancelled": handlers.on_visit_cancelled,
        },
    ),
]
