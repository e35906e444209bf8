"""``greenwave users``: manage control-centre accounts from the command line.

``create-admin`` and ``create`` make accounts (the first admin of a deployment
this way: the service has no sign-up); ``list``, ``disable``, ``enable``,
``set-role`` and ``reset-password`` manage them, each audited as ``cli`` like
the same action through the API. Only ``create-admin`` and ``create`` may
create the database: every other action on a directory or URL that holds none
is an error (a typo in ``--data-dir`` must not quietly start an empty one).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from intersections.errors import InputError

__all__ = ["register", "run_create", "run_list", "run_manage"]

ROLES = ["viewer", "operator", "technician", "engineer", "admin"]


def _db_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("--config", metavar="FILE", help="settings file (TOML); also $GREENWAVE_CONFIG")
    c.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL (default: the service's)")
    c.add_argument("--data-dir", metavar="DIR", help="the service's data directory")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="manage control-centre users (create the first admin, disable, roles, passwords)")
    us = p.add_subparsers(dest="users_command", metavar="ACTION")
    for name, helptext in (("create-admin", "create an admin user"), ("create", "create a user with a role")):
        c = us.add_parser(name, help=helptext)
        c.add_argument("--username", default="admin" if name == "create-admin" else None, required=name == "create")
        if name == "create":
            c.add_argument("--role", required=True, choices=ROLES)
        c.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        _db_args(c)
        c.set_defaults(func=run_create, role_default="admin" if name == "create-admin" else None)
    lst = us.add_parser("list", help="list users")
    _db_args(lst)
    lst.set_defaults(func=run_list)
    for name, helptext in (
        ("disable", "disable an account (its sessions end; nothing is deleted)"),
        ("enable", "enable a disabled account"),
        ("set-role", "change an account's role"),
        ("reset-password", "set a new password for an account (its sessions end)"),
    ):
        c = us.add_parser(name, help=helptext)
        c.add_argument("username")
        if name == "set-role":
            c.add_argument("role", choices=ROLES)
        if name == "reset-password":
            c.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        _db_args(c)
        c.set_defaults(func=run_manage, action=name)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _db(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The service's database, migrated; without ``create``, one that must already exist."""
    from api.server.db import Database
    from api.server.settings import load_settings

    settings = load_settings(args.config, database_url=args.database_url, data_dir=args.data_dir)
    url = settings.resolved_database_url
    if url.startswith("sqlite") and not create:
        path = Path(url.split("///", 1)[-1])
        if not path.is_file():
            raise InputError(
                "no control-centre database here (check --data-dir or --database-url; "
                "'greenwave users create-admin' creates one)",
                where=str(path),
            )
    db = Database(url)
    db.migrate()
    return db


def _password(args: argparse.Namespace, who: str) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass(f"password for {who}: ")
    if getpass.getpass("again: ") != password:
        print("greenwave users: the passwords differ", file=sys.stderr)
        return None
    return password


def run_create(args: argparse.Namespace) -> int:
    from api.server.auth import AuthError, PasswordPolicyError, Role, create_user, password_problems

    role = Role(getattr(args, "role", None) or args.role_default)
    password = _password(args, args.username)
    if password is None:
        return 2
    problems = password_problems(password, args.username)
    if problems:
        print(f"greenwave users: password: {'; '.join(problems)}", file=sys.stderr)
        return 2
    db = _db(args, create=True)
    try:
        with db.session() as s:
            create_user(s, args.username, password, role, created_by="cli")
            db.audit(s, "cli", "user.create", args.username, role=role.value)
    except (AuthError, PasswordPolicyError) as e:
        print(f"greenwave users: {e}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(f"created {role.value} {args.username}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from api.server.db import User

    db = _db(args)
    try:
        with db.session() as s:
            for u in s.scalars(select(User).order_by(User.id)):
                print(f"{u.username}\t{u.role}\t{'active' if u.active else 'disabled'}")
    finally:
        db.dispose()
    return 0


def run_manage(args: argparse.Namespace) -> int:
    """disable, enable, set-role, reset-password: the API's rules (last admin kept, policy, sessions end)."""
    from sqlalchemy import func, select

    from api.server.auth import PasswordPolicyError, Role, find_user, revoke_user_tokens, set_password
    from api.server.db import User

    password = _password(args, args.username) if args.action == "reset-password" else None
    if args.action == "reset-password" and password is None:
        return 2
    db = _db(args)
    try:
        with db.session() as s:
            u = find_user(s, args.username)
            if u is None:
                print(f"greenwave users: no user {args.username!r}", file=sys.stderr)
                return 1
            demote = args.action == "disable" or (args.action == "set-role" and args.role != "admin")
            if demote and u.role == "admin" and u.active:
                admins = s.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.active))
                if (admins or 0) <= 1:
                    print(f"greenwave users: {u.username} is the last active admin", file=sys.stderr)
                    return 1
            if args.action in ("disable", "enable"):
                u.active = args.action == "enable"
                if not u.active:
                    revoke_user_tokens(s, u.id)
                db.audit(s, "cli", f"user.{args.action}", u.username)
            elif args.action == "set-role":
                old, u.role = u.role, Role(args.role).value
                db.audit(s, "cli", "user.role", u.username, old=old, new=u.role)
            else:
                assert password is not None
                try:
                    set_password(s, u, password)
                except PasswordPolicyError as e:
                    print(f"greenwave users: {e}", file=sys.stderr)
                    return 2
                db.audit(s, "cli", "user.password_reset", u.username)
            print(f"{args.action}: {u.username} ({u.role}, {'active' if u.active else 'disabled'})")
    finally:
        db.dispose()
    return 0
