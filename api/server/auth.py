"""Users, roles, passwords and bearer tokens.

Passwords are hashed with scrypt (RFC 7914, ``hashlib.scrypt``: N=2^14, r=8,
p=1, 16-byte salt, 32-byte key; the parameters are stored with each hash so
they can be raised later). Tokens are 32 random bytes handed to the client once;
the database keeps only their HMAC-SHA256 digest under the service's
``secret_key``, with an expiry, and a logout revokes them.

User names are unique case-insensitively ("Admin" and "admin" are one
account; the database holds a unique index on ``lower(username)``, migration
0003). New passwords follow :func:`password_problems`: at least
:data:`MIN_PASSWORD_LENGTH` characters, not a common password nor one padded
with digits or symbols (``data/common_passwords.txt``, compared
case-insensitively), not the user name (NIST SP 800-63B §5.1.1.2: length and a
blocklist, no composition rules). :class:`LoginThrottle` slows guessing down.

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
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from functools import cache
from importlib.resources import files

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api.server.db import Database, Token, User, utcnow
from intersections.errors import GreenwaveError

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
    "find_user",
    "AuthError",
    "PasswordPolicyError",
    "password_problems",
    "check_password",
    "set_password",
    "revoke_user_tokens",
    "token_digest",
    "LoginThrottle",
    "MIN_PASSWORD_LENGTH",
]

MIN_PASSWORD_LENGTH = 12

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


class AuthError(GreenwaveError):
    """An account operation refused (an existing user, a password the policy rejects)."""


class PasswordPolicyError(AuthError, ValueError):
    """A new password the policy refuses; ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("password: " + "; ".join(problems))
        self.problems = problems


@cache
def _common_passwords() -> frozenset[str]:
    text = files("api.server").joinpath("data/common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(ln.strip().lower() for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))


def password_problems(password: str, username: str = "") -> list[str]:
    """Why ``password`` may not be used (empty: it may); checked on every new password, never on login."""
    out: list[str] = []
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return ["must be valid Unicode text (a lone surrogate is not)"]
    if len(password) < MIN_PASSWORD_LENGTH:
        out.append(f"use at least {MIN_PASSWORD_LENGTH} characters (got {len(password)})")
    low = password.lower()
    base = re.sub(r"[\d\W_]+$", "", low)  # "Password1234!" -> "password"
    common = _common_passwords()
    if low in common or base in common or re.sub(r"^[\d\W_]+", "", base) in common:
        out.append("a common password (or one padded with digits or symbols): choose another")
    elif len(set(low)) <= 2:
        out.append("too few different characters")
    if username and username.lower() in low:
        out.append("must not contain the user name")
    return out


def check_password(password: str, username: str = "") -> None:
    problems = password_problems(password, username)
    if problems:
        raise PasswordPolicyError(problems)


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


def find_user(s: Session, username: str) -> User | None:
    """The account named ``username``, whatever its letter case."""
    return s.scalar(select(User).where(func.lower(User.username) == username.lower()))


def authenticate(s: Session, username: str, password: str) -> User | None:
    user = find_user(s, username)
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


def revoke_user_tokens(s: Session, user_id: int, *, keep_digest: str | None = None) -> None:
    """Revoke every token of a user (a disabled account, a changed or reset password), but ``keep_digest``."""
    q = update(Token).where(Token.user_id == user_id, Token.revoked.is_(False))
    if keep_digest is not None:
        q = q.where(Token.digest != keep_digest)
    s.execute(q.values(revoked=True))


def token_digest(token: str, key: str) -> str:
    """The stored form of a token (HMAC-SHA256 under the service key)."""
    return _digest(token, key)


def set_password(s: Session, user: User, password: str, *, policy: bool = True, keep_digest: str | None = None) -> None:
    """A new password (checked against the policy); every session ends but ``keep_digest``'s."""
    if policy:
        check_password(password, user.username)
    user.password_hash = hash_password(password)
    revoke_user_tokens(s, user.id, keep_digest=keep_digest)


def create_user(
    s: Session, username: str, password: str, role: Role, *, created_by: str = "system", policy: bool = True
) -> User:
    """A new account; ``policy=False`` only for the demo users (their password is public anyway)."""
    existing = find_user(s, username)
    if existing is not None:
        same = "" if existing.username == username else f" (as {existing.username!r}: names ignore letter case)"
        raise AuthError(f"user {username!r} already exists{same}")
    if policy:
        check_password(password, username)
    user = User(username=username, password_hash=hash_password(password), role=str(role), created_by=created_by)
    s.add(user)
    s.flush()
    return user


@dataclass
class _Strikes:
    failures: int = 0
    locks: int = 0
    locked_until: float = 0.0
    last_s: float = field(default_factory=time.monotonic)


class LoginThrottle:
    """Failed logins per account and per client, with exponential back-off and a temporary lock.

    After ``max_failures`` failures in a row for an account (four times as many from one client
    address, which may be a whole office behind one NAT), further
    attempts for it are refused without checking the password for ``lock_s`` seconds, doubling with
    each further lock up to ``lock_max_s``; a success clears the account's (and the client's)
    failures. :meth:`fail` returns a description of the lock it started, so the caller writes one
    audit row per lock, not one per attempt (a login storm cannot grow the audit log). State lives
    in the service process (a restart forgets it, like OWASP's in-memory throttles); an idle entry
    is forgotten after an hour. ``clock`` is injectable for tests.
    """

    FORGET_S = 3600.0

    def __init__(
        self,
        max_failures: int = 5,
        lock_s: float = 30.0,
        lock_max_s: float = 900.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.max_failures, self.lock_s, self.lock_max_s = max_failures, lock_s, lock_max_s
        self.clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._by: dict[tuple[str, str], _Strikes] = {}

    def _keys(self, username: str, client: str) -> list[tuple[str, str]]:
        return [("account", username.lower()[:64]), ("client", client or "?")]

    def retry_after_s(self, username: str, client: str) -> float:
        """Seconds until a login for this account from this client may be tried (0: now)."""
        now = self.clock()
        with self._lock:
            waits = [st.locked_until - now for k in self._keys(username, client) if (st := self._by.get(k))]
        return max([0.0, *waits])

    def fail(self, username: str, client: str) -> list[tuple[str, str, float]]:
        """Count a failure; the locks it starts, as (kind, key, seconds)."""
        now = self.clock()
        started: list[tuple[str, str, float]] = []
        with self._lock:
            if len(self._by) > 10_000:
                self._by = {k: v for k, v in self._by.items() if now - v.last_s < self.FORGET_S}
            for key in self._keys(username, client):
                st = self._by.setdefault(key, _Strikes(last_s=now))
                if now - st.last_s > self.FORGET_S:
                    st.failures, st.locks = 0, 0
                st.last_s = now
                st.failures += 1
                limit = self.max_failures * (4 if key[0] == "client" else 1)
                if st.failures >= limit and st.locked_until <= now:
                    secs = min(self.lock_s * 2**st.locks, self.lock_max_s)
                    st.locks += 1
                    st.failures = 0
                    st.locked_until = now + secs
                    started.append((key[0], key[1], secs))
        return started

    def succeed(self, username: str, client: str) -> None:
        with self._lock:
            for key in self._keys(username, client):
                self._by.pop(key, None)
