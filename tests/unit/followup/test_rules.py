"""rules.toml: validated at load, and the decisions it encodes (programs, next steps, opt-out)."""

import pytest
from pydantic import ValidationError

from services.followup.rules import RULES_PATH, load_rules, parse_hours, parse_rules

RULES = load_rules()


def test_the_shipped_rules_load_and_are_versioned() -> None:
    assert RULES.version
    assert RULES.stamp("hardship.advice_first") == f"followup.hardship.advice_first@{RULES.version}"
    assert parse_hours(RULES.contact_hours.sms) == (9 * 60, 20 * 60)


def test_a_misspelt_key_fails_loudly() -> None:
    text = RULES_PATH.read_text(encoding="utf-8").replace("grace_days", "grace_dayz")
    with pytest.raises(ValidationError, match="grace_dayz"):
        parse_rules(text)


def test_the_last_program_rule_must_catch_every_case() -> None:
    text = RULES_PATH.read_text(encoding="utf-8").replace(
        'id = "advice_first"\nwhy = "bereavement and anything else: free debt advice and a conversation before any plan"\n',
        'id = "advice_first"\nwhy = "only bereavement"\ncategories = ["bereavement"]\n',
    )
    with pytest.raises(ValidationError, match="last hardship program rule"):
        parse_rules(text)


@pytest.mark.parametrize(
    ("category", "dpd", "program", "rule"),
    [
        ("disaster", 200, "deferral", "disaster_deferral"),
        ("job_loss", 120, "restructuring", "long_arrears_restructuring"),
        ("job_loss", 30, "deferral", "temporary_shock_deferral"),
        ("illness", 90, "deferral", "temporary_shock_deferral"),
        ("illness", 91, "restructuring", "long_arrears_restructuring"),
        ("income_drop", 10, "restructuring", "lasting_income_drop_restructuring"),
        ("bereavement", 10, "counselling", "advice_first"),
        ("other", 10, "counselling", "advice_first"),
    ],
)
def test_the_care_program_follows_the_documented_table(category, dpd, program, rule) -> None:
    chosen = RULES.program_for(category, dpd)
    assert (chosen.program, chosen.id) == (program, rule)


def test_an_absent_customer_is_called_then_revisited() -> None:
    assert RULES.next_step("customer_absent", 1)[0] == "call"
    assert RULES.next_step("customer_absent", 2)[0] == "revisit"
    assert RULES.next_step("customer_absent", 5)[0] == "revisit"


def test_a_refusal_waits_days_before_one_call() -> None:
    step, rule = RULES.next_step("refused", 1)
    assert step == "call" and rule is not None and rule.delay_hours >= 48


def test_outcomes_without_a_rule_lead_nowhere() -> None:
    assert RULES.next_step("unsafe_location", 1)[0] == "none"
    assert RULES.next_step("something_new", 1) == ("none", None)


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop. ", "退订", "TD", "td", "ＳＴＯＰ", "unsubscribe!"])
def test_opt_out_keywords(text: str) -> None:
    assert RULES.is_opt_out(text)


@pytest.mark.parametrize("text", ["please stop calling me at work", "OK", "我已还款", "STOP IT", ""])
def test_other_replies_are_not_opt_outs(text: str) -> None:
    assert not RULES.is_opt_out(text)


def test_pointless_rules_name_known_actions_and_facts() -> None:
    for action in RULES.ledger.pointless:
        assert action.split(".", 1)[0] in ("sms", "call")
