"""Reviewed SMS templates in zh-CN and en, from templates.toml."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

TEMPLATES_PATH = Path(__file__).parent / "templates.toml"
FALLBACK_LANGUAGE = "en"


@cache
def load_templates(path: Path = TEMPLATES_PATH) -> dict[str, dict[str, str]]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return {name: texts for name, texts in raw.items() if isinstance(texts, dict)}


def render(template_id: str, language: str, params: dict[str, str]) -> tuple[str, str]:
    """(text, language used): the customer's language when we have it, else English."""
    texts = load_templates()[template_id]
    used = language if language in texts else FALLBACK_LANGUAGE
    return texts[used].format(**params), used
