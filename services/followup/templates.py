"""Reviewed SMS templates in zh-CN and en, from templates.toml."""

from __future__ import annotations

import string
import tomllib
from functools import cache
from pathlib import Path

TEMPLATES_PATH = Path(__file__).parent / "templates.toml"
FALLBACK_LANGUAGE = "en"
LANGUAGES = ("zh-CN", "en")


@cache
def load_templates(path: Path = TEMPLATES_PATH) -> dict[str, dict[str, str]]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return {name: texts for name, texts in raw.items() if isinstance(texts, dict)}


def templates_version(path: Path = TEMPLATES_PATH) -> str:
    return str(tomllib.loads(path.read_text(encoding="utf-8"))["version"])


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def render(template_id: str, language: str, params: dict[str, str]) -> tuple[str, str]:
    """(text, language used): the customer's language when we have it, else English."""
    texts = load_templates()[template_id]
    used = language if language in texts else _same_language(language, texts) or FALLBACK_LANGUAGE
    return texts[used].format(**params), used


def _same_language(language: str, texts: dict[str, str]) -> str | None:
    """zh, zh-Hans-CN ... -> zh-CN: the same primary language subtag."""
    primary = language.split("-", 1)[0].lower()
    return next((code for code in texts if code.split("-", 1)[0].lower() == primary), None)
