"""Extension objects, created unbound so that modules can import them without an app."""

from __future__ import annotations

from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect


def client_address() -> str:
    """Key rate limits by the client address (ProxyFix has already applied X-Forwarded-For)."""
    return get_remote_address() or request.environ.get("REMOTE_ADDR", "unknown")


migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=client_address, default_limits=[], headers_enabled=True)
