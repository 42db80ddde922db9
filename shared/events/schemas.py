"""JSON Schemas of the payloads: generated from the models, checked in, kept compatible.

`python -m shared.events.schemas` rewrites shared/events/schemas/ and refuses a change
that would break an existing consumer or reading an old event: a removed field, a new
required field, a changed type or a narrowed enum. Such a change is a new event type.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.events.payloads import PAYLOAD_TYPES

SCHEMA_DIR = Path(__file__).parent / "schemas"
_IGNORED_KEYS = {"title", "description", "default", "examples"}

Schema = dict[str, Any]


def generate() -> dict[str, Schema]:
    return {name: model.model_json_schema() for name, model in sorted(PAYLOAD_TYPES.items())}


def load_checked_in() -> dict[str, Schema]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(SCHEMA_DIR.glob("*.json"))}


def incompatibilities(old: Schema, new: Schema) -> list[str]:
    """What in `new` breaks a reader or writer that was built against `old`."""
    return _compare(old, new, old.get("$defs", {}), new.get("$defs", {}), "$")


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    ref = node.get("$ref")
    if ref:
        return defs[ref.rsplit("/", 1)[-1]]
    return node


def _compare(old: Schema, new: Schema, old_defs: Schema, new_defs: Schema, path: str) -> list[str]:
    old, new = _resolve(old, old_defs), _resolve(new, new_defs)
    problems: list[str] = []
    if "properties" in old or "properties" in new:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        for name in old_props:
            if name not in new_props:
                problems.append(f"{path}.{name}: removed")
            else:
                problems += _compare(old_props[name], new_props[name], old_defs, new_defs, f"{path}.{name}")
        for name in set(new.get("required", [])) - set(old.get("required", [])):
            problems.append(f"{path}.{name}: newly required")
        return problems
    for key in ("anyOf", "oneOf", "allOf"):
        if key in old or key in new:
            old_alts, new_alts = old.get(key, []), new.get(key, [])
            if len(new_alts) < len(old_alts):
                return [f"{path}: fewer {key} alternatives"]
            for i, (old_alt, new_alt) in enumerate(zip(old_alts, new_alts, strict=False)):
                problems += _compare(old_alt, new_alt, old_defs, new_defs, f"{path}[{i}]")
            return problems
    if "enum" in old and not set(old["enum"]) <= set(new.get("enum") or old["enum"]):
        problems.append(f"{path}: enum narrowed")
    if "const" in old and old["const"] != new.get("const"):
        problems.append(f"{path}: const changed")
    for key in set(old) | set(new):
        if key in _IGNORED_KEYS or key in ("enum", "properties", "required", "$defs"):
            continue
        if old.get(key) != new.get(key) and key in ("type", "format", "items"):
            problems.append(f"{path}: {key} changed from {old.get(key)} to {new.get(key)}")
    return problems


def check_all() -> list[str]:
    current, checked_in = generate(), load_checked_in()
    problems = [f"{name}: event type removed" for name in checked_in if name not in current]
    for name, schema in current.items():
        if name in checked_in:
            problems += [f"{name} {p}" for p in incompatibilities(checked_in[name], schema)]
    return problems


def write() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in generate().items():
        (SCHEMA_DIR / f"{name}.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")


def main() -> int:
    problems = check_all()
    if problems:
        print("backward-incompatible change; add a new event type instead:", file=sys.stderr)
        print("\n".join(problems), file=sys.stderr)
        return 1
    write()
    print(f"wrote {len(PAYLOAD_TYPES)} schemas to {SCHEMA_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
