from decimal import Decimal

import pytest

from services.planner.strategy import CaseFacts, load_strategy

STRATEGY = load_strategy()


def decide(**facts):
    base = {"dpd": 10, "overdue_amount": Decimal(500)}
    base.update(facts)
    return STRATEGY.decide(CaseFacts(**base))


@pytest.mark.parametrize(
    ("facts", "action", "rule"),
    [
        ({}, "sms_reminder", "sms.early_reminder"),
        ({"sms_last_7d": 1}, "call", "call.after_reminder"),
        ({"dpd": 40}, "call", "call.mid_stage"),
        ({"dpd": 70, "overdue_amount": Decimal(5000)}, "field_visit", "visit.late_and_material"),
        ({"dpd": 70, "overdue_amount": Decimal(100)}, "call", "call.mid_stage"),
        ({"failed_calls_in_a_row": 3}, "field_visit", "visit.unreachable"),
        ({"broken_promises": 2}, "field_visit", "visit.broken_promises"),
        ({"revisit_requested": True}, "field_visit", "visit.revisit_requested"),
        ({"open_promise": True, "dpd": 90, "overdue_amount": Decimal(9000)}, "hold", "hold.promise_pending"),
        ({"flags": frozenset({"dispute"}), "dpd": 200}, "hold", "hold.suppressed"),
        ({"flags": frozenset({"care_hold"}), "revisit_requested": True}, "hold", "hold.suppressed"),
        ({"flags": frozenset({"vulnerable"}), "dpd": 45}, "care_referral", "care.vulnerable_in_difficulty"),
        ({"flags": frozenset({"vulnerable"}), "dpd": 5}, "sms_reminder", "sms.early_reminder"),
    ],
)
def test_each_rule_fires_and_is_named(facts, action, rule) -> None:
    decision = decide(**facts)
    assert (decision.action, decision.rule) == (action, rule)
    assert decision.strategy_version == STRATEGY.version
    assert decision.why


def test_an_unknown_condition_is_a_config_error(tmp_path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text('version = "x"\n[[rules]]\nid = "r"\nwhy = "w"\naction = "call"\nmin_mood = 3\n')
    with pytest.raises(ValueError, match="min_mood"):
        load_strategy(bad)
