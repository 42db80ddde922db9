"""Which pack applies to an account: by country, optionally by product, with a lender's overrides.

A lender's compliance configuration is one TOML file (or the same as mappings):

    default_pack = "cn"

    [countries]            # ISO 3166-1 alpha-2 -> pack id (adds to / replaces the defaults)
    SG = "cn"

    [overrides.cn]         # merged over the cn pack for every account that uses it
    override_id = "acme-2026-03"
    [overrides.cn.caps.attempts_per_number]
    limit = 4

    [[products]]           # a product-specific pack (and override) for one country
    country = "CN"
    product = "credit_card"
    pack = "cn"
    [products.override]
    override_id = "acme-cards-2026-03"
    [products.override.caps.connected_contacts_per_day]
    limit = 2

Packs are compiled once per catalog and shared: selecting one is a dict lookup.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.compliance.packs import DEFAULT_PACK_ID, RulePack, load_layered_pack

COUNTRY_PACKS: Mapping[str, str] = {
    "CN": "cn",
    "US": "us",
    "GB": "uk",
    "IE": "ie",
    "IN": "in",
    "ID": "id",
    "PH": "ph",
    "VN": "vn",
}


@dataclass(frozen=True, slots=True)
class ProductPack:
    country: str
    product: str
    pack: str
    override: Mapping[str, Any] | None = None


class PackCatalog:
    """Selects and caches the rule pack for an account's country and product."""

    __slots__ = ("_by_country", "_by_product", "_default")

    def __init__(
        self,
        *,
        default_pack: str = DEFAULT_PACK_ID,
        countries: Mapping[str, str] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        products: list[ProductPack] | None = None,
    ) -> None:
        overrides = overrides or {}
        country_packs = {**COUNTRY_PACKS, **{code.upper(): pack for code, pack in (countries or {}).items()}}
        compiled = {
            pack_id: _load(pack_id, overrides.get(pack_id))
            for pack_id in {default_pack, *country_packs.values()}
        }
        self._default = compiled[default_pack]
        self._by_country = {code: compiled[pack_id] for code, pack_id in country_packs.items()}
        self._by_product = {
            (product.country.upper(), product.product): _load(
                product.pack, overrides.get(product.pack), product.override
            )
            for product in products or []
        }

    @classmethod
    def from_toml(cls, path: str | Path) -> PackCatalog:
        with Path(path).open("rb") as handle:
            config = tomllib.load(handle)
        unknown = set(config) - {"default_pack", "countries", "overrides", "products"}
        if unknown:
            raise ValueError(f"unknown keys in the compliance configuration: {sorted(unknown)}")
        return cls(
            default_pack=config.get("default_pack", DEFAULT_PACK_ID),
            countries=config.get("countries"),
            overrides=config.get("overrides"),
            products=[ProductPack(**entry) for entry in config.get("products", [])],
        )

    def for_account(self, country: str | None, product: str | None = None) -> RulePack:
        """The pack for an account; the default pack (cn) for a country without one."""
        code = (country or "").upper()
        if product is not None:
            pack = self._by_product.get((code, product))
            if pack is not None:
                return pack
        return self._by_country.get(code, self._default)


def _load(pack_id: str, *overrides: Mapping[str, Any] | None) -> RulePack:
    """A pack with the lender-wide override, then the product's, merged in that order."""
    return load_layered_pack(pack_id, [layer for layer in overrides if layer])
