"""Every SMS template is reviewed text: both languages, same placeholders, an opt-out line,
and none of the threatening or shaming phrases in banned_phrases.txt."""

from pathlib import Path

import pytest

from services.followup.rules import load_rules
from services.followup.templates import (
    LANGUAGES,
    THIRD_PARTY_TEMPLATE,
    for_recipient,
    load_templates,
    placeholders,
    render,
)
from shared.compliance import Recipient

BANNED_PATH = Path(__file__).parent / "banned_phrases.txt"
OPT_OUT = {"en": "Reply STOP to opt out", "zh-CN": "回复退订"}
TEMPLATES = load_templates()


def banned_phrases() -> list[str]:
    lines = (line.strip() for line in BANNED_PATH.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def banned_in(text: str) -> list[str]:
    lowered = text.casefold()
    return [phrase for phrase in banned_phrases() if phrase.casefold() in lowered]


def test_the_list_covers_both_languages() -> None:
    phrases = banned_phrases()
    assert len(phrases) > 50
    assert any(p.isascii() for p in phrases) and any(not p.isascii() for p in phrases)


@pytest.mark.parametrize(
    "text",
    [
        "Pay now or we will take legal action and inform your employer.",
        "Final warning: we will tell your family.",
        "请立即还款，否则我们将起诉您并通知你的单位。",
        "您已被列入黑名单，后果自负。",
    ],
)
def test_the_check_catches_threats_and_shaming(text: str) -> None:
    assert banned_in(text)


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_templates_are_reviewed_text(template_id: str) -> None:
    texts = TEMPLATES[template_id]
    assert set(texts) == set(LANGUAGES), "every template in zh-CN and en"
    assert len({frozenset(placeholders(t)) for t in texts.values()}) == 1, "same placeholders"
    for language, text in texts.items():
        assert banned_in(text) == [], f"{template_id}/{language}"
        assert OPT_OUT[language] in text, f"{template_id}/{language} tells how to opt out"


def test_every_template_the_rules_send_exists() -> None:
    rules = load_rules()
    used = {"promise_confirmation", "promise_reminder", "care_referral", "care_info", "dispute_ack"}
    used |= {"cash_confirmation"}
    used |= {rule.message for rule in rules.outcomes.values() if rule.message}
    assert used <= set(TEMPLATES)
    assert rules.hardship.notify_by_sms


def test_render_falls_back_by_language() -> None:
    params = {"amount": "300.00", "currency": "CNY", "date": "2026-12-05"}
    assert render("promise_reminder", "zh", params)[1] == "zh-CN"
    assert render("promise_reminder", "fr-FR", params)[1] == "en"
    text, used = render("promise_reminder", "zh-CN", params)
    assert used == "zh-CN" and "300.00" in text and "2026-12-05" in text


# --- third parties: never any debt details (shared.compliance.may_contain_debt_details) -------

# What a debt looks like in a message: the figures of this account, and the words for it.
DEBT_PARAMS = {"amount": "2500.00", "currency": "CNY", "date": "2026-12-05", "dpd": "75"}
DEBT_WORDS = ["debt", "owe", "overdue", "arrears", "repay", "payment", "loan", "amount", "collect",
              "dispute", "past due", "欠", "逾期", "还款", "债", "贷款", "金额", "催收", "账户", "异议"]  # fmt: skip


def debt_details_in(text: str) -> list[str]:
    lowered = text.casefold()
    return [d for d in [*DEBT_PARAMS.values(), *DEBT_WORDS] if d.casefold() in lowered]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_a_message_a_third_party_may_read_carries_no_debt_details(template_id: str, language: str) -> None:
    params = {name: DEBT_PARAMS.get(name, "x") for name in placeholders(TEMPLATES[template_id]["en"])}
    text, _ = render(template_id, language, params, Recipient.THIRD_PARTY)
    assert debt_details_in(text) == [], f"{template_id}/{language} to a third party"
    assert for_recipient(template_id, params, Recipient.THIRD_PARTY) == (THIRD_PARTY_TEMPLATE, {})


def test_the_debtor_still_gets_the_details_the_check_would_catch() -> None:
    text, _ = render("promise_reminder", "en", DEBT_PARAMS, Recipient.DEBTOR)
    assert {"2500.00", "2026-12-05"} <= set(debt_details_in(text))
    assert for_recipient("promise_reminder", DEBT_PARAMS, Recipient.DEBTOR) == (
        "promise_reminder",
        DEBT_PARAMS,
    )


def test_the_third_party_template_has_nothing_to_fill_in() -> None:
    assert all(placeholders(text) == set() for text in TEMPLATES[THIRD_PARTY_TEMPLATE].values())
