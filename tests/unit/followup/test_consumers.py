"""Follow-up's consumer groups: the outcomes group may fetch on a shorter wait than the rest."""

from services.followup.consumers import consumers
from services.followup.contacts import Followup
from services.followup.gate import ContactGate
from services.followup.handlers import EventHandlers
from services.followup.rules import load_rules
from services.followup.settings import FollowupSettings
from shared.compliance import PackCatalog

RULES = load_rules()
HANDLERS = EventHandlers(Followup(RULES, ContactGate(PackCatalog(), RULES.contact_hours), "Asia/Shanghai"))


def test_only_the_outcomes_group_takes_its_own_fetch_wait() -> None:
    specs = {spec.group_id: spec for spec in consumers(HANDLERS, 1, 10)}
    assert specs["followup.outcomes"].fetch_max_wait_ms == 10
    assert specs["followup.delinquency"].fetch_max_wait_ms is None  # CONSUMER_FETCH_MAX_WAIT_MS


def test_without_the_setting_every_group_uses_the_shared_wait() -> None:
    settings = FollowupSettings(sms_provider_api_key="k")
    assert settings.outcome_fetch_max_wait_ms is None
    assert all(spec.fetch_max_wait_ms is None for spec in consumers(HANDLERS, 2, None))


def test_the_outcomes_wait_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("OUTCOME_FETCH_MAX_WAIT_MS", "10")
    assert FollowupSettings(sms_provider_api_key="k").outcome_fetch_max_wait_ms == 10
