"""The development token issuer: `python -m services.visits token ...`."""

import pytest

from services.visits.tokens import token_command
from shared.auth import TokenVerifier, generate_keypair


@pytest.fixture
def dev_keys(tmp_path, monkeypatch):
    private, public = generate_keypair(tmp_path)
    monkeypatch.setenv("JWT_PRIVATE_KEY_FILE", str(private))
    return TokenVerifier(public.read_text(), "fieldcollect", "fieldcollect-dev")


def test_an_agent_token(dev_keys, capsys) -> None:
    assert token_command(["--agent", "AG-001", "--team", "north"]) == 0
    principal = dev_keys.verify(capsys.readouterr().out.strip())
    assert (principal.subject, principal.role, principal.team) == ("AG-001", "agent", "north")


def test_a_supervisor_token_needs_a_team(dev_keys, capsys) -> None:
    with pytest.raises(SystemExit):
        token_command(["--supervisor", "SUP-1"])
    assert token_command(["--supervisor", "SUP-1", "--team", "north"]) == 0
    principal = dev_keys.verify(capsys.readouterr().out.strip())
    assert (principal.role, principal.team) == ("supervisor", "north")


def test_other_roles(dev_keys, capsys) -> None:
    assert token_command(["--subject", "core", "--role", "core_banking", "--hours", "1"]) == 0
    assert dev_keys.verify(capsys.readouterr().out.strip()).role == "core_banking"
