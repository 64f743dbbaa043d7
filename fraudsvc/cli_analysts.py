"""`fraudsvc analysts ...`: the review pages' accounts (add, password, list, disable).

The password is read from standard input (one line; a terminal gets a prompt that does not echo
and asks twice), hashed with argon2id and never printed or logged. Accounts are never deleted:
their names stay in labels and the audit trail, so `disable` ends an account and its sessions.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from typing import Any

from fraudsvc.cli_rules import _run, actor
from fraudsvc.settings import Settings


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _new_password_hash() -> str | None:
    """The password read from stdin, checked and hashed; None (said on stderr) when refused."""
    from fraudsvc.review import auth

    password = _read_password()
    problem = auth.password_problem(password)
    if problem is not None:
        print(f"fraudsvc: {problem}", file=sys.stderr)
        return None
    return auth.hash_password(password)


def cmd_analysts(args: argparse.Namespace, settings: Settings) -> int:
    from fraudsvc.db import analysts
    from fraudsvc.review import auth

    if args.action == "add":
        if not re.match(auth.NAME_PATTERN, args.name):
            print("fraudsvc: a name is 1-64 characters of A-Z a-z 0-9 . _ -", file=sys.stderr)
            return 2
        new = _new_password_hash()
        if new is None:
            return 2
        hashed: str = new  # a name the lambda sees narrowed
        if not _run(settings, lambda: analysts.create(args.name, hashed, actor())):
            print(f"fraudsvc: analyst {args.name!r} exists already", file=sys.stderr)
            return 1
        print(f"analyst {args.name} added")
    elif args.action == "password":
        new = _new_password_hash()
        if new is None:
            return 2
        changed: str = new
        if not _run(settings, lambda: analysts.set_password(args.name, changed, actor())):
            print(f"fraudsvc: no analyst {args.name!r}", file=sys.stderr)
            return 1
        print(f"analyst {args.name}: password changed; their sessions ended")
    elif args.action == "list":
        for a in _run(settings, analysts.all_analysts):
            state = "disabled" if a.disabled else "active"
            print(f"{a.name:<32} {state:<9} since {a.created_at:%Y-%m-%d %H:%M}")
    elif args.action == "disable":
        if not _run(settings, lambda: analysts.disable(args.name, actor())):
            print(f"fraudsvc: no analyst {args.name!r}", file=sys.stderr)
            return 1
        print(f"analyst {args.name} disabled; their sessions ended")
    return 0


def register(sub: Any) -> None:
    """Add the `analysts` subcommand to the main parser."""
    an = sub.add_parser(
        "analysts",
        help="accounts for the review pages: add and password (read from stdin), list, disable",
        description="Accounts of the analysts who work the review queue at /review. "
        "Passwords are read from standard input and stored as argon2id hashes.",
    )
    asub = an.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = asub.add_parser("add", help="a new account; the password is read from stdin")
    add.add_argument("name")
    pw = asub.add_parser("password", help="a new password, read from stdin; ends sessions")
    pw.add_argument("name")
    asub.add_parser("list", help="every account and whether it is active")
    dis = asub.add_parser("disable", help="disable an account and end its sessions")
    dis.add_argument("name")
    an.set_defaults(handler=cmd_analysts)
