"""Passwords are hashed with Argon2id at argon2-cffi's recommended strength."""

from __future__ import annotations

from argon2 import PasswordHasher, profiles
from flask import Flask

from cephalopod.auth import operations as ops


def test_password_is_stored_as_argon2id(app: Flask) -> None:
    with app.app_context():
        ops.create_user("ann", "secret password")
        stored = ops.get_user("ann").password_hash  # type: ignore[union-attr]
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "secret password" not in stored


def test_weak_hash_is_upgraded_on_login(app: Flask) -> None:
    weak = PasswordHasher.from_parameters(profiles.CHEAPEST).hash("secret password")
    with app.app_context():
        user = ops.create_user("ann", "placeholder")
        user.password_hash = weak
        ops.db.session.commit()
        assert ops.authenticate("ann", "wrong") is None
        assert ops.get_user("ann").password_hash == weak  # type: ignore[union-attr]
        assert ops.authenticate("ann", "secret password") is not None
        upgraded = ops.get_user("ann").password_hash  # type: ignore[union-attr]
    assert upgraded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    with app.app_context():
        assert ops.authenticate("ann", "secret password") is not None
        assert ops.get_user("ann").last_login_at is not None  # type: ignore[union-attr]
