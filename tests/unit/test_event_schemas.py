import copy

from shared.events import schemas
from shared.events.payloads import PAYLOAD_TYPES


def test_checked_in_schemas_match_the_models() -> None:
    """Run `make schemas` after changing a payload; it refuses breaking changes."""
    assert schemas.load_checked_in() == schemas.generate()
    assert set(schemas.load_checked_in()) == set(PAYLOAD_TYPES)


def test_current_models_are_compatible_with_checked_in_schemas() -> None:
    assert schemas.check_all() == []


def _opened() -> dict:
    return copy.deepcopy(schemas.generate()["delinquency.opened"])


def test_removing_a_field_is_breaking() -> None:
    new = _opened()
    del new["properties"]["dpd"]
    assert any("dpd: removed" in p for p in schemas.incompatibilities(_opened(), new))


def test_a_new_required_field_is_breaking() -> None:
    new = _opened()
    new["properties"]["branch"] = {"type": "string"}
    new["required"].append("branch")
    assert any("branch: newly required" in p for p in schemas.incompatibilities(_opened(), new))


def test_changing_a_type_is_breaking() -> None:
    new = _opened()
    new["properties"]["dpd"]["type"] = "string"
    assert any("dpd: type changed" in p for p in schemas.incompatibilities(_opened(), new))


def test_narrowing_an_enum_is_breaking() -> None:
    old = copy.deepcopy(schemas.generate()["delinquency.cured"])
    new = copy.deepcopy(old)
    new["properties"]["reason"]["enum"] = ["current"]
    assert any("enum narrowed" in p for p in schemas.incompatibilities(old, new))


def test_a_nested_model_change_is_caught_through_refs() -> None:
    new = _opened()
    del new["$defs"]["ContactDetails"]["properties"]["time_zone"]
    assert any("contact" in p and "time_zone" in p for p in schemas.incompatibilities(_opened(), new))


def test_an_optional_field_is_additive_and_fine() -> None:
    new = _opened()
    new["properties"]["branch"] = {"type": "string", "default": None}
    assert schemas.incompatibilities(_opened(), new) == []
