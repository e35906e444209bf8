"""``greenwave users``: create the first admin (and other users) in the control-centre database."""

from __future__ import annotations

import argparse
import getpass
import sys

__all__ = ["register", "run_create"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="manage control-centre users (create the first admin)")
    us = p.add_subparsers(dest="users_command", metavar="ACTION")
    for name, helptext in (("create-admin", "create an admin user"), ("create", "create a user with a role")):
        c = us.add_parser(name, help=helptext)
        c.add_argument("--username", default="admin" if name == "create-admin" else None, required=name == "create")
        if name == "create":
            c.add_argument("--role", required=True, choices=["viewer", "operator", "technician", "engineer", "admin"])
        c.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        c.add_argument("--config", metavar="FILE", help="settings file (TOML); also $GREENWAVE_CONFIG")
        c.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL (default: the service's)")
        c.add_argument("--data-dir", metavar="DIR", help="the service's data directory")
        c.set_defaults(func=run_create, role_default="admin" if name == "create-admin" else None)
    lst = us.add_parser("list", help="list users")
    lst.add_argument("--config", metavar="FILE")
    lst.add_argument("--database-url", metavar="URL")
    lst.add_argument("--data-dir", metavar="DIR")
    lst.set_defaults(func=run_list)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _db(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from api.server.db import Database
    from api.server.settings import load_settings

    settings = load_settings(args.config, database_url=args.database_url, data_dir=args.data_dir)
    db = Database(settings.resolved_database_url)
    db.migrate()
    return db


def run_create(args: argparse.Namespace) -> int:
    from api.server.auth import AuthError, Role, create_user

    role = Role(getattr(args, "role", None) or args.role_default)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            print("greenwave users: the passwords differ", file=sys.stderr)
            return 2
    if len(password) < 8:
        print("greenwave users: use a password of at least 8 characters", file=sys.stderr)
        return 2
    db = _db(args)
    try:
        with db.session() as s:
            create_user(s, args.username, password, role, created_by="cli")
            db.audit(s, "cli", "user.create", args.username, role=role.value)
    except AuthError as e:
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
