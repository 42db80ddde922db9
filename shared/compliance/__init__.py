"""The compliance policy library: may this contact happen now, and if not, when?

Pure and fast (no I/O in the decision path). See shared/compliance/README.md.

    pack = load_pack("cn")
    customer = Customer(time_zone="Asia/Shanghai", dpd=35)
    request = ContactRequest(Channel.CALL, at=datetime(2026, 3, 2, 7, 30, tzinfo=UTC), number_id="n1")
    decision = decide(pack, customer, request, ContactHistory("Asia/Shanghai"))
    decision.allowed, decision.rule_id, decision.next_allowed
"""

from shared.compliance.catalog import COUNTRY_PACKS, PackCatalog, ProductPack
from shared.compliance.engine import (
    allowed_intervals,
    allowed_windows_on_date,
    check_visit_outcome,
    decide,
    earliest_allowed_in_window,
    may_contain_debt_details,
    next_allowed,
)
from shared.compliance.history import ContactHistory, ContactRecord
from shared.compliance.model import (
    Agent,
    BreathingSpace,
    Channel,
    ContactRequest,
    Customer,
    Decision,
    LocalWindow,
    Purpose,
    Recipient,
    Suppression,
)
from shared.compliance.packs import (
    DEFAULT_PACK_ID,
    PACK_IDS,
    Rule,
    RulePack,
    Source,
    load_layered_pack,
    load_pack,
)

__all__ = [
    "COUNTRY_PACKS",
    "DEFAULT_PACK_ID",
    "PACK_IDS",
    "Agent",
    "BreathingSpace",
    "Channel",
    "ContactHistory",
    "ContactRecord",
    "ContactRequest",
    "Customer",
    "Decision",
    "LocalWindow",
    "PackCatalog",
    "ProductPack",
    "Purpose",
    "Recipient",
    "Rule",
    "RulePack",
    "Source",
    "Suppression",
    "allowed_intervals",
    "allowed_windows_on_date",
    "check_visit_outcome",
    "decide",
    "earliest_allowed_in_window",
    "load_layered_pack",
    "load_pack",
    "may_contain_debt_details",
    "next_allowed",
]
