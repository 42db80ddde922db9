from services.intake.masking import CONTACT_ROLES, mask_name, mask_phone, mask_text, round_coordinate


def test_phone_numbers_keep_only_their_last_four_digits() -> None:
    assert mask_phone("+86 138-0013-8000") == "*********8000"
    assert mask_phone("123") == "123"[-4:] and mask_phone(None) is None and mask_phone("") == ""


def test_names_keep_only_their_first_character() -> None:
    assert mask_name("王小明") == "王**"
    assert mask_name("X") == "X*"
    assert mask_name("Bartholomew Montgomery-Smith") == "B********"


def test_addresses_lose_the_street_and_precision() -> None:
    assert mask_text("1 Example Rd") == "***" and mask_text(None) is None
    assert round_coordinate(22.543219) == 22.54 and round_coordinate(None) is None


def test_the_roles_that_see_contact_data() -> None:
    assert {"core_banking", "care"} == CONTACT_ROLES
