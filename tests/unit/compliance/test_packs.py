"""Packs are versioned, sourced data; lenders override them; accounts select them."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from shared.compliance import (
    DEFAULT_PACK_ID,
    PACK_IDS,
    Channel,
    ContactHistory,
    ContactRecord,
    Customer,
    PackCatalog,
    ProductPack,
    load_pack,
)
from shared.compliance.packs import PACKS_DIR
from tests.unit.compliance.support import TUESDAY, decide_at, local

SHANGHAI = "Asia/Shanghai"


def test_every_shipped_pack_is_listed_and_loads() -> None:
    assert sorted(path.stem for path in PACKS_DIR.glob("*.toml")) == sorted(PACK_IDS)
    assert DEFAULT_PACK_ID == "cn"
    for pack_id in PACK_IDS:
        pack = load_pack(pack_id)
        assert pack.id == pack_id
        assert pack.version
        assert pack.override_id is None


@pytest.mark.parametrize("pack_id", PACK_IDS)
def test_every_rule_names_its_sources(pack_id: str) -> None:
    pack = load_pack(pack_id)
    assert pack.sources
    for source in pack.sources:
        assert source.regulation
        assert source.article
    for key, rule in pack.rules.items():
        assert rule.id == f"{pack_id}.{key}"
        assert rule.reason
        if key not in {"allowed", "channel_opt_out"}:
            assert rule.sources, key


@pytest.mark.parametrize(
    ("pack_id", "recording", "years"),
    [
        ("cn", True, 5),
        ("us", False, 3),
        ("uk", False, 6),
        ("ie", False, 6),
        ("in", False, 5),
        ("id", False, 5),
        ("ph", False, 5),
        ("vn", False, 5),
    ],
)
def test_record_requirements(pack_id: str, recording: bool, years: int) -> None:
    pack = load_pack(pack_id)
    assert pack.requires_visit_recording is recording
    assert pack.record_retention_years == years


def test_cn_keeps_records_at_least_five_years() -> None:
    assert load_pack("cn").record_retention_years >= 5


def test_shipped_packs_are_loaded_once() -> None:
    assert load_pack("cn") is load_pack("cn")


def test_unknown_pack_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rule pack"):
        load_pack("../cn")
    with pytest.raises(ValueError, match="unknown rule pack"):
        load_pack("xx")


def test_hours_are_readable() -> None:
    assert load_pack("cn").hours(Channel.CALL) == ((time(8, 0), time(22, 0)),)
    assert load_pack("ph").spec.dpd_hours is not None


# --- a lender's overrides -------------------------------------------------------------------------


def test_override_changes_a_cap_and_the_version() -> None:
    pack = load_pack(
        "cn", overrides={"override_id": "acme-2026-03", "caps": {"attempts_per_number": {"limit": 3}}}
    )
    assert pack.version == "2026.1+acme-2026-03"
    assert pack.base_version == "2026.1"
    assert pack.spec.caps["attempts_per_number"].limit == 3
    assert pack.spec.caps["connected_contacts_per_day"].limit == 3  # untouched rules keep their values
    history = ContactHistory(
        SHANGHAI,
        [
            ContactRecord(Channel.CALL, local(SHANGHAI, TUESDAY, 8 + index, 0), number_id="n1")
            for index in range(3)
        ],
    )
    decision = decide_at(
        pack, Customer(time_zone=SHANGHAI), Channel.CALL, local(SHANGHAI, TUESDAY, 15, 0), history
    )
    assert decision.rule_id == "cn.attempts_per_number"
    assert decision.pack_version == "2026.1+acme-2026-03"
    assert load_pack("cn").spec.caps["attempts_per_number"].limit == 6  # the shipped pack is unchanged


def test_override_file(tmp_path: Path) -> None:
    override = tmp_path / "acme-cn.toml"
    override.write_text(
        'override_id = "acme-file-1"\n'
        "[quiet_hours]\n"
        'visit = ["09:00-20:00"]\n'
        "[[sources]]\n"
        'id = "acme_policy"\n'
        'regulation = "ACME Consumer Finance collection policy v7"\n'
        'article = "s.3.2: visits 09:00-20:00"\n',
        encoding="utf-8",
    )
    pack = load_pack("cn", override_file=override)
    assert pack.version == "2026.1+acme-file-1"
    assert pack.hours(Channel.VISIT)[0][0].hour == 9
    assert pack.hours(Channel.CALL)[0][0].hour == 8
    assert {source.id for source in pack.sources} >= {"cba_2026", "acme_policy"}  # sources merge by id


def test_file_and_mapping_overrides_stack_in_order(tmp_path: Path) -> None:
    override = tmp_path / "lender.toml"
    override.write_text('override_id = "lender"\n[caps.attempts_per_number]\nlimit = 4\n', encoding="utf-8")
    pack = load_pack(
        "cn",
        override_file=override,
        overrides={"override_id": "desk", "caps": {"attempts_per_number": {"limit": 2}}},
    )
    assert pack.version == "2026.1+lender+desk"
    assert pack.spec.caps["attempts_per_number"].limit == 2


def test_anonymous_override_gets_a_stable_content_version() -> None:
    first = load_pack("uk", overrides={"caps": {"contacts_per_day": {"limit": 2}}})
    second = load_pack("uk", overrides={"caps": {"contacts_per_day": {"limit": 2}}})
    other = load_pack("uk", overrides={"caps": {"contacts_per_day": {"limit": 1}}})
    assert first.version == second.version != other.version
    assert first.version.startswith("2026.1+local.")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"caps": {"attempts_per_number": {"limt": 3}}}, "limt"),
        ({"quiet_hours": {"call": ["22:00-08:00"]}}, "start must be before the end"),
        ({"quiet_hours": {"call": ["8-22"]}}, "08:00-22:00"),
        ({"id": "us"}, "cannot change the pack's id"),
        ({"version": "9"}, "cannot change the pack's version"),
        ({"override_id": "no spaces please"}, "override_id"),
        (
            {
                "caps": {
                    "x": {
                        "sources": ["nowhere"],
                        "description": "d",
                        "limit": 1,
                        "counts": "attempts",
                        "channels": ["call"],
                        "applies_to": ["call"],
                        "per": "debtor",
                        "window_days": 1,
                    }
                }
            },
            "unknown sources",
        ),
        (
            {
                "caps": {
                    "quiet_hours": {
                        "sources": ["cba_2026"],
                        "description": "d",
                        "limit": 1,
                        "counts": "attempts",
                        "channels": ["call"],
                        "applies_to": ["call"],
                        "per": "debtor",
                        "window_days": 1,
                    }
                }
            },
            "rule names",
        ),
        ({"caps": {"attempts_per_number": {"counts": "connected"}}}, "per-number cap counts attempts"),
    ],
)
def test_invalid_overrides_fail_loudly(override: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_pack("cn", overrides=override)


# --- selection per country and product ------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "pack_id"),
    [
        ("CN", "cn"),
        ("US", "us"),
        ("GB", "uk"),
        ("IE", "ie"),
        ("IN", "in"),
        ("ID", "id"),
        ("PH", "ph"),
        ("VN", "vn"),
        ("FR", "cn"),
        (None, "cn"),
        ("gb", "uk"),
    ],
)
def test_catalog_selects_by_country(country: str | None, pack_id: str) -> None:
    assert PackCatalog().for_account(country).id == pack_id


def test_catalog_product_override() -> None:
    catalog = PackCatalog(
        overrides={"cn": {"override_id": "acme", "caps": {"attempts_per_number": {"limit": 5}}}},
        products=[
            ProductPack(
                country="CN",
                product="credit_card",
                pack="cn",
                override={"override_id": "acme-cards", "caps": {"connected_contacts_per_day": {"limit": 2}}},
            )
        ],
    )
    cards = catalog.for_account("CN", "credit_card")
    loans = catalog.for_account("CN", "cash_loan")
    assert cards.version == "2026.1+acme+acme-cards"
    assert cards.spec.caps["attempts_per_number"].limit == 5
    assert cards.spec.caps["connected_contacts_per_day"].limit == 2
    assert loans.version == "2026.1+acme"
    assert catalog.for_account("CN") is loans


def test_catalog_from_toml(tmp_path: Path) -> None:
    config = tmp_path / "compliance.toml"
    config.write_text(
        'default_pack = "uk"\n'
        "[countries]\n"
        'SG = "cn"\n'
        "[overrides.us]\n"
        'override_id = "acme-us"\n'
        "[overrides.us.caps.calls_in_7_days]\n"
        "limit = 5\n"
        "[[products]]\n"
        'country = "PH"\n'
        'product = "bnpl"\n'
        'pack = "ph"\n'
        "[products.override]\n"
        'override_id = "acme-bnpl"\n'
        "[products.override.dpd_hours]\n"
        'hours = ["05:00-23:00"]\n',
        encoding="utf-8",
    )
    catalog = PackCatalog.from_toml(config)
    assert catalog.for_account("FR").id == "uk"
    assert catalog.for_account("SG").id == "cn"
    assert catalog.for_account("US").version == "2026.1+acme-us"
    bnpl = catalog.for_account("PH", "bnpl")
    assert bnpl.version == "2026.1+acme-bnpl"
    zone = "Asia/Manila"
    late = decide_at(bnpl, Customer(time_zone=zone, dpd=90), Channel.CALL, local(zone, TUESDAY, 23, 30))
    assert late.rule_id == "ph.quiet_hours"


def test_catalog_rejects_unknown_configuration_keys(tmp_path: Path) -> None:
    config = tmp_path / "compliance.toml"
    config.write_text('defaultpack = "uk"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="defaultpack"):
        PackCatalog.from_toml(config)
