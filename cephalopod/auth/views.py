"""Login and logout pages; session and bearer-token loading for Flask-Login.

GET/POST /login    the login form (CSRF-protected; rate-limited per address, and failed
                   attempts per user name from all addresses together)
POST     /logout   end the user's sessions for good (a replayed session cookie is refused)
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from cephalopod.audit.operations import remember_token
from cephalopod.auth import operations as ops
from cephalopod.auth.models import User
from cephalopod.errors import is_api_request, json_error
from cephalopod.extensions import limiter, login_manager

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    """User name and password."""

    username = StringField("User name", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Load the session's user, unless the session ended at a log-out."""
    return ops.user_for_session(user_id)


@login_manager.request_loader
def load_user_from_token(req: object) -> User | None:
    """Accept ``Authorization: Bearer <token>`` on the JSON API (pages want a session)."""
    if not is_api_request():
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    api_token = ops.valid_token(token.strip())
    if api_token is None:
        return None
    remember_token(api_token.id)  # the audit log names the token that acted
    return api_token.user


@login_manager.unauthorized_handler
def unauthorized() -> Response:
    """JSON 401 for the API, a redirect to the login page for pages."""
    if is_api_request():
        return json_error("Authentication required", 401)
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _safe_next(target: str | None) -> str:
    """Only follow a ``next`` that stays on this site (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and "\\" not in target:
            return target
    return url_for("admin.home")


def _login_limit() -> str:
    limit: str = current_app.config["LOGIN_RATE_LIMIT"]  # validated by settings.load
    return limit


def _account_limit() -> str:
    limit: str = current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"]  # validated by settings.load
    return limit


def _account_key() -> str:
    """The user name tried (case-folded: one budget however it is spelt)."""
    return "account:" + (request.form.get("username") or "").strip().casefold()[:80]


def _failed(response: Response) -> bool:
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(
    _account_limit, key_func=_account_key, methods=["POST"], deduct_when=_failed, scope="account"
)
def login() -> str | Response | tuple[str, int]:
    """Show the login form and log the user in."""
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        user = ops.authenticate(
            form.username.data or "", form.password.data or "", request.remote_addr
        )
        if user is not None:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong user name or password.", "error")
        return render_template("auth/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """End every session of the user for good, then this one."""
    if current_user.is_authenticated:
        ops.end_sessions(current_user)
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
