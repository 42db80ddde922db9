"""Which events follow-up consumes, and the handler of each."""

from services.followup.handlers import EventHandlers
from shared.events import topics
from shared.runtime import ConsumerSpec


def consumers(
    handlers: EventHandlers, outcome_consumers: int = 1, outcome_fetch_max_wait_ms: int | None = None
) -> list[ConsumerSpec]:
    """The consumer groups; `outcome_consumers` members of the outcomes group in this process,
    fetching with `outcome_fetch_max_wait_ms` when set (else CONSUMER_FETCH_MAX_WAIT_MS).

    Both apply a batch in one savepoint with one inbox statement (falling back to one savepoint
    per event when an event fails), three round trips per event fewer on the hot path; the
    outcomes' batches also read the facts of all their accounts at once and write their promises
    in one statement (EventHandlers.outcome_batch).

    Each member is a consumer of its own with its own partitions and database connection, so
    several partitions are applied at once (what running more replicas would do, in one process).
    """
    outcomes = ConsumerSpec(
        group_id="followup.outcomes",
        topics=[topics.VISIT_OUTCOMES],
        handlers={
            "visit.outcome_recorded": handlers.on_outcome_recorded,
            "visit.cash_confirmation_requested": handlers.on_cash_confirmation_requested,
        },
        whole_batches=True,
        batch_scope=handlers.outcome_batch,
        fetch_max_wait_ms=outcome_fetch_max_wait_ms,
    )
    return [
        ConsumerSpec(
            group_id="followup.delinquency",
            topics=[topics.DELINQUENCY],
            handlers={
                "delinquency.opened": handlers.on_delinquency_opened,
                "delinquency.updated": handlers.on_delinquency_updated,
                "customer.flags_changed": handlers.on_flags_changed,
                "payment.received": handlers.on_payment_received,
                "delinquency.cured": handlers.on_delinquency_cured,
            },
            whole_batches=True,
        ),
        *[outcomes] * outcome_consumers,
    ]
