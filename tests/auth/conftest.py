"""Fixtures of the auth tests."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, profiles

from cephalopod.auth import operations as ops


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash with argon2's cheapest (still Argon2id) parameters: the real ones cost ~0.2 s each.

    tests/auth/test_passwords.py checks the real parameters.
    """
    monkeypatch.setattr(ops, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
