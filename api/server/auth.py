"""Users, roles, passwords and bearer tokens.

Passwords are hashed with scrypt (RFC 7914, ``hashlib.scrypt``: N=2^14, r=8,
p=1, 16-byte salt, 32-byte key; the parameters are stored with each hash so
they can be raised later). Tokens are 32 random bytes handed to the client once;
the database keeps only their HMAC-SHA256 digest under the service's
``secret_key``, with an expiry, and a logout revokes them.

Roles and what they may do (:data:`ROLE_PERMISSIONS`)::

    viewer      read everything
    operator    + commands (mode, fixed plan, flash request, manual hold), acknowledge alarms
    technician  + acknowledge alarms, field actions (cut / restore a controller's link)
    engineer    + commands, plans (create, activate, schedule)
    admin       everything, and users
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.server.db import Database, Token, User, utcnow

__all__ = [
    "Role",
    "Permission",
    "ROLE_PERMISSIONS",
    "hash_password",
    "verify_password",
    "Principal",
    "issue_token",
    "resolve_token",
    "revoke_token",
    "create_user",
    "AuthError",
]

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    TECHNICIAN = "technician"
    ENGINEER = "engineer"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"
    COMMAND = "command"
    ACK_ALARM = "ack_alarm"
    FIELD = "field"
    PLAN = "plan"
    USERS = "users"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.COMMAND, Permission.ACK_ALARM}),
    Role.TECHNICIAN: frozenset({Permission.READ, Permission.ACK_ALARM, Permission.FIELD}),
    Role.ENGINEER: frozenset({Permission.READ, Permission.COMMAND, Permission.ACK_ALARM, Permission.PLAN}),
    Role.ADMIN: frozenset(Permission),
}


class AuthError(Exception):
    pass


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$key`` (salt and key in base64)."""
    if not password:
        raise ValueError("empty password")
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(key)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A hash to compare against when the user does not exist, so that a login
# takes the same time whether or not the name is known.
_DUMMY_HASH = hash_password("not-a-real-password")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    username: str
    role: Role

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role]

    def can(self, perm: Permission) -> bool:
        return perm in self.permissions


def _digest(token: str, key: str) -> str:
    return hmac.new(key.encode(), token.encode(), hashlib.sha256).hexdigest()


def authenticate(s: Session, username: str, password: str) -> User | None:
    user = s.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        verify_password(password, _DUMMY_HASH)
        return None
    return user if verify_password(password, user.password_hash) else None


def issue_token(s: Session, user: User, key: str, ttl_s: int) -> tuple[str, Token]:
    token = secrets.token_urlsafe(32)
    row = Token(digest=_digest(token, key), user_id=user.id, expires_at=utcnow() + timedelta(seconds=ttl_s))
    s.add(row)
    return token, row


def resolve_token(db: Database, token: str, key: str) -> Principal | None:
    if not token or len(token) > 256:
        return None
    with db.session() as s:
        row = s.scalar(select(Token).where(Token.digest == _digest(token, key)))
        if row is None or row.revoked or row.expires_at <= utcnow():
            return None
        user = s.get(User, row.user_id)
        if user is None or not user.active:
            return None
        return Principal(user.id, user.username, Role(user.role))


def revoke_token(s: Session, token: str, key: str) -> None:
    row = s.scalar(select(Token).where(Token.digest == _digest(token, key)))
    if row is not None:
        row.revoked = True


def create_user(s: Session, username: str, password: str, role: Role, *, created_by: str = "system") -> User:
    if s.scalar(select(User.id).where(User.username == username)) is not None:
        raise AuthError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=str(role), created_by=created_by)
    s.add(user)
    s.flush()
    return user
