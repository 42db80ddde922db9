"""Reviewed SMS templates in zh-CN and en, from templates.toml."""

from __future__ import annotations

import string
import tomllib
from functools import cache
from pathlib import Path

from shared.compliance import Recipient, may_contain_debt_details

TEMPLATES_PATH = Path(__file__).parent / "templates.toml"
FALLBACK_LANGUAGE = "en"
LANGUAGES = ("zh-CN", "en")
# What a message that a third party may read says instead (no placeholders, no debt details).
THIRD_PARTY_TEMPLATE = "contact_request"


@cache
def load_templates(path: Path = TEMPLATES_PATH) -> dict[str, dict[str, str]]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return {name: texts for name, texts in raw.items() if isinstance(texts, dict)}


def templates_version(path: Path = TEMPLATES_PATH) -> str:
    return str(tomllib.loads(path.read_text(encoding="utf-8"))["version"])


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def for_recipient(
    template_id: str, params: dict[str, str], recipient: Recipient
) -> tuple[str, dict[str, str]]:
    """The template and parameters a message to `recipient` may carry.

    The debtor gets what was planned; anyone else (shared.compliance.may_contain_debt_details
    says no under every pack) gets the neutral call-back request, with no parameters at all,
    so neither an amount, a date nor days past due can reach them.
    """
    if may_contain_debt_details(recipient):
        return template_id, params
    return THIRD_PARTY_TEMPLATE, {}


def render(
    template_id: str, language: str, params: dict[str, str], recipient: Recipient = Recipient.DEBTOR
) -> tuple[str, str]:
    """(text, language used): the customer's language when we have it, else English."""
    template_id, params = for_recipient(template_id, params, recipient)
    texts = load_templates()[template_id]
    used = language if language in texts else _same_language(language, texts) or FALLBACK_LANGUAGE
    return texts[used].format(**params), used


def _same_language(language: str, texts: dict[str, str]) -> str | None:
    """zh, zh-Hans-CN ... -> zh-CN: the same primary language subtag."""
    primary = language.split("-", 1)[0].lower()
    return next((code for code in texts if code.split("-", 1)[0].lower() == primary), None)
