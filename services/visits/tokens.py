"""The development token issuer: `python -m services.visits token --agent AG-001 [--team T]`.

Signs with the local development key pair (`.devstack/keys/`, created on first use, the
same pair `make run` gives the services), or with JWT_PRIVATE_KEY_FILE. Production tokens
come from the lender's identity provider; the services only hold its public key.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

from shared.auth import ROLES, generate_keypair, issue_token
from shared.settings import ServiceSettings

DEV_KEY_DIR = Path(__file__).resolve().parents[2] / ".devstack" / "keys"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m services.visits token", description=__doc__.splitlines()[0]
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--agent", metavar="AGENT_ID", help="a field agent's token (role agent)")
    who.add_argument("--supervisor", metavar="SUBJECT", help="a supervisor's token (needs --team)")
    who.add_argument("--subject", help="any other subject (with --role)")
    parser.add_argument("--role", choices=ROLES, help="with --subject")
    parser.add_argument("--team", help="the team claim: an agent's team, or the team a supervisor sees")
    parser.add_argument("--hours", type=float, default=12.0, help="lifetime (default 12 h)")
    args = parser.parse_args(argv)
    if args.supervisor and not args.team:
        parser.error("--supervisor needs --team")
    if args.subject and not args.role:
        parser.error("--subject needs --role")
    return args


def private_key() -> str:
    configured = os.environ.get("JWT_PRIVATE_KEY_FILE")
    if configured:
        return Path(configured).read_text()
    private_path, _ = generate_keypair(DEV_KEY_DIR)
    return private_path.read_text()


def token_command(argv: list[str]) -> int:
    args = parse(argv)
    subject, role = (
        (args.agent, "agent")
        if args.agent
        else (args.supervisor, "supervisor")
        if args.supervisor
        else (args.subject, args.role)
    )
    settings = ServiceSettings()
    token = issue_token(
        private_key(),
        subject,
        role,
        settings.jwt_audience,
        settings.jwt_issuer,
        team=args.team,
        ttl=timedelta(hours=args.hours),
    )
    sys.stdout.write(token + "\n")
    return 0
