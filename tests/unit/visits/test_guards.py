"""Rate limits, the token cache and 422 bodies, without a server."""

from datetime import timedelta

import jwt
import pytest

from services.visits.guards import CachingTokenVerifier, RateLimiter, _item
from shared.auth import TokenVerifier, generate_keypair, issue_token


def test_a_bucket_allows_the_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("AG-1", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("AG-1", now=0.0) == pytest.approx(0.5)
    assert limiter.take("AG-2", now=0.0) == 0.0, "per agent"
    assert limiter.take("AG-1", now=0.5) == 0.0
    assert limiter.take("AG-1", now=0.5) > 0


def test_idle_buckets_are_forgotten_when_the_table_is_full() -> None:
    limiter = RateLimiter(rate=1.0, burst=2, max_keys=2)
    limiter.take("a", now=0.0)
    limiter.take("b", now=0.0)
    limiter.take("c", now=10.0)  # a and b have refilled: dropping them changes nothing
    assert set(limiter._buckets) == {"c"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    private, public = generate_keypair(tmp_path_factory.mktemp("k"))
    return private.read_text(), public.read_text()


def test_the_cache_returns_what_was_verified_until_expiry(keys, monkeypatch) -> None:
    inner = TokenVerifier(keys[1], "fieldcollect", "fieldcollect-dev")
    verifier = CachingTokenVerifier(inner, size=2)
    token = issue_token(
        keys[0], "AG-1", "agent", "fieldcollect", "fieldcollect-dev", ttl=timedelta(minutes=5)
    )
    calls = []
    monkeypatch.setattr(inner, "verify", lambda t: calls.append(t) or TokenVerifier.verify(inner, t))
    assert verifier.verify(token).subject == "AG-1"
    assert verifier.verify(token).subject == "AG-1"
    assert len(calls) == 1
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    with pytest.raises(jwt.InvalidTokenError):
        verifier.verify(tampered)


def test_an_expired_token_is_not_served_from_the_cache(keys, monkeypatch) -> None:
    """Past its exp, the token is verified again (and the signature check refuses it)."""
    import services.visits.guards as guards

    inner = TokenVerifier(keys[1], "fieldcollect", "fieldcollect-dev")
    verifier = CachingTokenVerifier(inner, size=10)
    token = issue_token(
        keys[0], "AG-1", "agent", "fieldcollect", "fieldcollect-dev", ttl=timedelta(seconds=30)
    )
    verifier.verify(token)
    calls = []
    monkeypatch.setattr(inner, "verify", lambda t: calls.append(t) or TokenVerifier.verify(inner, t))
    verifier.verify(token)
    assert calls == []
    real = guards.time.time
    monkeypatch.setattr(guards.time, "time", lambda: real() + 60)
    verifier.verify(token)
    assert calls == [token], "re-verified once past exp"


def test_validation_items_name_the_field_and_never_the_input() -> None:
    error = {
        "loc": ("body", "outcome", "promise_to_pay", "amount"),
        "msg": "Input should be a number",
        "input": "Wang Fang, 18 Keyuan Road",
    }
    assert _item(error) == {"field": "outcome.promise_to_pay.amount", "reason": "Input should be a number"}
    assert (
        _item({"loc": ("header", "X-Device-Clock"), "msg": "Field required"})["field"]
        == "header.X-Device-Clock"
    )
