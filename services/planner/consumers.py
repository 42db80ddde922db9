"""Which events the planner consumes, and the handler of each."""

from services.planner import handlers
from shared.events import topics
from shared.runtime import ConsumerSpec

CONSUMERS = [
    ConsumerSpec(
        group_id="planner.delinquency",
        topics=[topics.DELINQUENCY],
        handlers={
            "delinquency.opened": handlers.on_delinquency_opened,
            "delinquency.updated": handlers.on_delinquency_updated,
            "payment.received": handlers.on_payment_received,
            "delinquency.cured": handlers.on_delinquency_cured,
            "customer.flags_changed": handlers.on_flags_changed,
        },
    ),
    ConsumerSpec(
        group_id="planner.feedback",
        topics=[topics.VISIT_OUTCOMES, topics.FOLLOWUPS],
        handlers={
            "visit.outcome_recorded": handlers.on_outcome_recorded,
            "sms.sent": handlers.on_sms_sent,
            "call.completed": handlers.on_call_completed,
            "promise.kept": handlers.on_promise_kept,
            "promise.broken": handlers.on_promise_broken,
            "revisit.requested": handlers.on_revisit_requested,
            "customer.flags_changed": handlers.on_flags_changed,
        },
    ),
]
