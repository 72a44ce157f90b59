"""Users, passwords (Argon2id) and API tokens (only their SHA-256 is stored)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from cephalopod.auth.models import ApiToken, User
from cephalopod.db import db, utcnow

_hasher = PasswordHasher()  # argon2-cffi's default profile is Argon2id (RFC 9106 low-memory)
#: Verified against when the user does not exist, so timing does not reveal user names.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
TOKEN_PREFIX = "ceph_"  # noqa: S105 - a public marker of our tokens, not a secret
TOKEN_USE_PRECISION = timedelta(minutes=1)


class UserError(ValueError):
    """A user operation that cannot be done; the message is for the person at the CLI."""


def hash_password(password: str) -> str:
    """Hash a password with Argon2id."""
    return _hasher.hash(password)


def get_user(username: str) -> User | None:
    """Return the user with this name, or None."""
    return db.session.scalar(select(User).where(User.username == username))


def create_user(username: str, password: str) -> User:
    """Create a user; refuse an existing name or an empty password."""
    username = username.strip()
    if not username or len(username) > 80:
        raise UserError("The user name must be 1 to 80 characters")
    if not password:
        raise UserError("The password must not be empty")
    if get_user(username) is not None:
        raise UserError(f"User {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), created_at=utcnow())
    db.session.add(user)
    db.session.commit()
    return user


def count_users() -> int:
    """Return how many users exist (the first start creates one when there is none)."""
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def authenticate(username: str, password: str) -> User | None:
    """Return the user when the password matches; rehash when the parameters got stronger."""
    user = get_user(username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(username: str) -> str:
    """Create an API token for a user and return it (the only time it is visible)."""
    user = get_user(username)
    if user is None:
        raise UserError(f"No user named {username!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=_token_hash(token), created_at=utcnow()))
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    """Return the active user owning ``token``, or None."""
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if api_token is None or not api_token.user.is_active:
        return None
    now = utcnow()
    # a write per request would turn every API read into a write: a minute's precision will do
    if api_token.last_used_at is None or now - api_token.last_used_at > TOKEN_USE_PRECISION:
        api_token.last_used_at = now
        db.session.commit()
    return api_token.user
