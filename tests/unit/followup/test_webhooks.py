from services.followup.webhooks import sign, verify


def test_a_signed_body_verifies() -> None:
    header = sign("secret", b'{"a":1}', 1_000)
    assert verify("secret", b'{"a":1}', header, now=1_010)


def test_tampering_a_wrong_key_or_an_old_signature_fail() -> None:
    header = sign("secret", b'{"a":1}', 1_000)
    assert not verify("secret", b'{"a":2}', header, now=1_010)
    assert not verify("other", b'{"a":1}', header, now=1_010)
    assert not verify("secret", b'{"a":1}', header, now=1_000 + 301)
    assert not verify("secret", b'{"a":1}', None, now=1_000)
    assert not verify("secret", b'{"a":1}', "t=abc,v1=00", now=1_000)
