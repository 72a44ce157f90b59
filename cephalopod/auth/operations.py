"""Users, passwords (Argon2id) and API tokens (only their SHA-256 is stored).

Log-ins (and failed ones), token creation and revocation are recorded in the audit log,
in the transaction of what they change.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update

from cephalopod.audit import operations as audit
from cephalopod.audit.operations import Actor
from cephalopod.auth.models import ApiToken, User
from cephalopod.db import db, utcnow

_hasher = PasswordHasher()  # argon2-cffi's default profile is Argon2id (RFC 9106 low-memory)
#: Verified against when the user does not exist, so timing does not reveal user names.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
TOKEN_PREFIX = "ceph_"  # noqa: S105 - a public marker of our tokens, not a secret
TOKEN_USE_PRECISION = timedelta(minutes=1)
MAX_TOKEN_DAYS = 3650


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


def authenticate(username: str, password: str, address: str | None = None) -> User | None:
    """Return the user when the password matches; rehash when the parameters got stronger.

    Recorded either way (``address``: the client's): a ``login`` of the user, or a
    ``login_failed`` naming the user name tried (never the password).
    """
    user = get_user(username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        verified = True
    except (VerificationError, InvalidHashError):
        verified = False
    if not verified or user is None or not user.is_active:
        audit.record("login_failed", Actor("anonymous", name=username, address=address))
        db.session.commit()
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    now = utcnow()
    user.last_login_at = now
    audit.record("login", Actor("user", name=user.username, address=address), at=now)
    db.session.commit()
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(username: str, expires_days: int | None = None, actor: Actor | None = None) -> str:
    """Create an API token for a user and return it (the only time it is visible).

    ``expires_days``: refused after that many days; None: valid until revoked. ``actor``:
    who makes it, for the audit log (the command line passes `Actor.cli`).
    """
    user = get_user(username)
    if user is None:
        raise UserError(f"No user named {username!r}")
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise UserError(f"A token expires after 1 to {MAX_TOKEN_DAYS} days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    expires_at = now + timedelta(days=expires_days) if expires_days is not None else None
    api_token = ApiToken(
        user=user, token_hash=_token_hash(token), created_at=now, expires_at=expires_at
    )
    db.session.add(api_token)
    db.session.flush()  # its id, which the entry names
    audit.record(
        "token_create",
        actor,
        token_id=api_token.id,
        changes=audit.created(_token_facts(user.username, expires_at)),
        at=now,
    )
    db.session.commit()
    return token


def _token_facts(username: str, expires_at: datetime | None) -> dict[str, str | None]:
    """What the audit log keeps of a token: whose it is and when it expires (never itself)."""
    return {"user": username, "expires_at": expires_at.isoformat() if expires_at else None}


def _revoke(tokens: list[ApiToken], actor: Actor | None) -> int:
    """Delete these tokens, each recorded as revoked, in one transaction."""
    for api_token in tokens:
        audit.record(
            "token_revoke",
            actor,
            token_id=api_token.id,
            changes=audit.removed(_token_facts(api_token.user.username, api_token.expires_at)),
        )
    ids = [api_token.id for api_token in tokens]
    if ids:
        db.session.execute(delete(ApiToken).where(ApiToken.id.in_(ids)))
    db.session.commit()
    return len(ids)


def revoke_token(token: str, actor: Actor | None = None) -> bool:
    """Delete the token (given as shown at its creation); tell whether it existed."""
    found = db.session.scalars(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    return bool(_revoke(list(found), actor))


def revoke_tokens(username: str, actor: Actor | None = None) -> int:
    """Delete every token of a user; return how many there were."""
    user = get_user(username)
    if user is None:
        raise UserError(f"No user named {username!r}")
    found = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))
    return _revoke(list(found), actor)


def user_for_token(token: str) -> User | None:
    """Return the active user owning ``token`` when it has not expired, or None."""
    api_token = valid_token(token)
    return api_token.user if api_token is not None else None


def valid_token(token: str) -> ApiToken | None:
    """Return ``token``'s record when its user is active and it has not expired, or None."""
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if api_token is None or not api_token.user.is_active:
        return None
    now = utcnow()
    if api_token.expires_at is not None and api_token.expires_at <= now:
        return None
    # a write per request would turn every API read into a write: a minute's precision will do
    if api_token.last_used_at is None or now - api_token.last_used_at > TOKEN_USE_PRECISION:
        api_token.last_used_at = now
        db.session.commit()
    return api_token


def user_for_session(session_id: str) -> User | None:
    """Return the user of a session's stored id (``<user id>.<generation>``), or None.

    None when the generation is not the user's current one: the session ended at a log-out.
    """
    user_id, dot, generation = session_id.partition(".")
    if not dot or not user_id.isdigit() or not generation.isdigit():
        return None  # also a session from before generations: it ends, the user logs in again
    user = db.session.get(User, int(user_id))
    if user is None or user.session_generation != int(generation):
        return None
    return user


def end_sessions(user: User) -> None:
    """End every session of the user, in every browser, for good (log-out)."""
    db.session.execute(
        update(User)
        .where(User.id == user.id)
        .values(session_generation=User.session_generation + 1)
    )
    db.session.commit()
