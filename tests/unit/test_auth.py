import base64
import json
from datetime import timedelta

import jwt
import pytest

from shared.auth import TokenVerifier, generate_keypair, issue_token


@pytest.fixture(scope="module")
def keypair(tmp_path_factory):
    private, public = generate_keypair(tmp_path_factory.mktemp("k"))
    return private.read_text(), public.read_text()


@pytest.fixture(scope="module")
def verifier(keypair):
    return TokenVerifier(keypair[1], "fieldcollect", "fieldcollect-dev")


def _token(keypair, **kw):
    args = {"subject": "AG-1", "role": "agent", "audience": "fieldcollect", "issuer": "fieldcollect-dev"}
    args.update(kw)
    return issue_token(keypair[0], **args)


def test_a_valid_token_names_subject_role_and_team(keypair, verifier) -> None:
    principal = verifier.verify(_token(keypair, team="t1"))
    assert (principal.subject, principal.role, principal.team) == ("AG-1", "agent", "t1")


def test_alg_none_is_refused(verifier) -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(
        json.dumps(
            {
                "sub": "AG-1",
                "role": "agent",
                "aud": "fieldcollect",
                "iss": "fieldcollect-dev",
                "exp": 4102444800,
            }
        ).encode()
    ).rstrip(b"=")
    with pytest.raises(jwt.InvalidTokenError):
        verifier.verify(f"{header.decode()}.{body.decode()}.")


def test_wrong_audience_is_refused(keypair, verifier) -> None:
    with pytest.raises(jwt.InvalidAudienceError):
        verifier.verify(_token(keypair, audience="someone-else"))


def test_expired_token_is_refused(keypair, verifier) -> None:
    with pytest.raises(jwt.ExpiredSignatureError):
        verifier.verify(_token(keypair, ttl=timedelta(seconds=-120)))


def test_tampered_token_is_refused(keypair, verifier) -> None:
    header, body, signature = _token(keypair).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["role"] = "supervisor"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        verifier.verify(f"{header}.{forged}.{signature}")


def test_hmac_signed_with_the_public_key_is_refused(keypair, verifier) -> None:
    forged = jwt.encode(
        {
            "sub": "AG-1",
            "role": "supervisor",
            "aud": "fieldcollect",
            "iss": "fieldcollect-dev",
            "exp": 4102444800,
        },
        "not-the-key",
        algorithm="HS256",
    )
    with pytest.raises(jwt.InvalidAlgorithmError):
        verifier.verify(forged)


def test_unknown_role_is_refused(keypair, verifier) -> None:
    with pytest.raises(jwt.InvalidTokenError, match="role"):
        verifier.verify(_token(keypair, role="root"))
