"""Which events the planner consumes, and the handler of each."""

from services.planner import handlers
from shared.events import topics
from shared.runtime import ConsumerSpec

CONSUMERS = [
    ConsumerSpec(
        group_id="planner.delinquency",
        topics=[topics.DELINQUENCY],
        handlers={"delinquency.opened": handlers.on_delinquency_opened},
    ),
]
