"""The ``cephalopod`` command (also ``python -m cephalopod`` and ``python manage.py``).

Commands import what they use inside their function (each such import says "lazy"):
``cephalopod --help`` and a command with broken settings then cost no application import
(SQLAlchemy, the models, the app: 0.4 to 1.5 s here), and the app is built only when a
command asks for it.
"""

from __future__ import annotations

import gc
import logging
import secrets
import sys
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import click
from flask import Flask

from cephalopod.crawler.cli import register as register_crawler
from cephalopod.geo.cli import register as register_geo
from cephalopod.ops.logs import configure_logging
from cephalopod.settings import SettingsError

log = logging.getLogger(__name__)


class AppContext:
    """Creates the app on first use, so ``--help`` works even with broken settings."""

    def __init__(self) -> None:
        self._apps: dict[bool, Flask] = {}
        self.verbose = False

    @property
    def app(self) -> Flask:
        """The whole app."""
        return self._get(web=True)

    @property
    def app_without_web(self) -> Flask:
        """The app without its web stack, for commands that serve no request (``crawl``)."""
        return self._get(web=False)

    @property
    def built(self) -> list[Flask]:
        """The apps built so far (none until a command asked for one)."""
        return list(self._apps.values())

    def _get(self, web: bool) -> Flask:
        if web not in self._apps:
            from cephalopod.app import create_app  # lazy: the whole app (docstring)

            self._apps[web] = create_app(
                web=web
            )  # logs from now on as LOG_FORMAT and LOG_LEVEL say
            if self.verbose:
                logging.getLogger().setLevel(logging.DEBUG)
        return self._apps[web]


P = ParamSpec("P")
R = TypeVar("R")


class PassApp(Protocol):
    """What ``pass_app`` is: the command modules it is handed to type their commands by it."""

    def __call__(self, command: Callable[Concatenate[AppContext, P], R], /) -> Callable[P, R]: ...


pass_app: PassApp = click.make_pass_decorator(AppContext, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages (whatever LOG_LEVEL says).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Cephalopod: know who runs your software."""
    ctx.ensure_object(AppContext).verbose = verbose
    # until the settings are read (they may be broken): the text format
    configure_logging(logging.DEBUG if verbose else logging.INFO, "text")


# --- database -------------------------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """Create, drop, recreate or upgrade the database tables."""


def _confirm(yes: bool, question: str) -> None:
    if not yes and not click.confirm(question, default=False):
        raise click.Abort


@db_group.command("create")
@pass_app
def db_create(ctx: AppContext) -> None:
    """Create the tables (an empty database is stamped with the newest migration)."""
    from cephalopod.schema import create_schema  # lazy: SQLAlchemy (docstring)

    with ctx.app.app_context():
        create_schema()
    click.echo("Tables created.")


@db_group.command("drop")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def db_drop(ctx: AppContext, yes: bool) -> None:
    """Drop every table and all data."""
    from cephalopod.schema import drop_schema  # lazy: SQLAlchemy (docstring)

    _confirm(yes, "Drop every table and ALL data?")
    with ctx.app.app_context():
        drop_schema()
    click.echo("Tables dropped.")


@db_group.command("recreate")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def db_recreate(ctx: AppContext, yes: bool) -> None:
    """Drop every table, then create them empty."""
    from cephalopod.schema import create_schema, drop_schema  # lazy: SQLAlchemy (docstring)

    _confirm(yes, "Drop every table and ALL data, then create empty tables?")
    with ctx.app.app_context():
        drop_schema()
        create_schema()
    click.echo("Tables recreated.")


@db_group.command("upgrade")
@pass_app
def db_upgrade(ctx: AppContext) -> None:
    """Apply pending migrations."""
    from cephalopod.schema import prepare_database  # lazy: SQLAlchemy (docstring)

    with ctx.app.app_context():
        prepare_database()
    click.echo("Database is up to date.")


# --- users and tokens -------------------------------------------------------------------------


def _create_user(ctx: AppContext, username: str, password: str) -> None:
    from cephalopod.auth.operations import UserError, create_user  # lazy: SQLAlchemy (docstring)

    with ctx.app.app_context():
        try:
            create_user(username, password)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"User {username!r} created.")


@cli.command("create_usr")
@click.argument("username")
@click.argument("password")
@pass_app
def create_usr(ctx: AppContext, username: str, password: str) -> None:
    """Create a user USERNAME with PASSWORD (the original command)."""
    _create_user(ctx, username, password)


@cli.command("create-user")
@click.argument("username")
@click.argument("password", required=False)
@pass_app
def create_user_cmd(ctx: AppContext, username: str, password: str | None) -> None:
    """Create a user; asks for the password when it is not given."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    _create_user(ctx, username, password)


@cli.command("create_token")
@click.argument("username")
@click.option(
    "--expires-days",
    type=click.IntRange(1, 3650),
    default=None,
    help="Refuse the token after this many days (default: valid until revoked).",
)
@pass_app
def create_token_cmd(ctx: AppContext, username: str, expires_days: int | None) -> None:
    """Print a new API token for USERNAME (shown once, alone on the last line)."""
    from cephalopod.audit.operations import Actor  # lazy: SQLAlchemy (docstring)
    from cephalopod.auth.operations import UserError, create_token  # lazy: SQLAlchemy (docstring)

    with ctx.app.app_context():
        try:
            token = create_token(username, expires_days=expires_days, actor=Actor.cli())
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
    until = f", valid for {expires_days} days" if expires_days else ""
    click.echo(
        f"API token for {username!r}{until} (shown only now; use it as 'Authorization: Bearer'):"
    )
    click.echo(token)


@cli.command("revoke_token")
@click.argument("token", required=False)
@click.option("--user", "username", help="Revoke every token of this user instead.")
@pass_app
def revoke_token_cmd(ctx: AppContext, token: str | None, username: str | None) -> None:
    """Revoke TOKEN (as create_token printed it), or every token of --user USER."""
    from cephalopod.audit.operations import Actor  # lazy: SQLAlchemy (docstring)
    from cephalopod.auth.operations import UserError, revoke_token, revoke_tokens

    if (token is None) == (username is None):
        raise click.UsageError("Give either a TOKEN or --user USER.")
    actor = Actor.cli()
    with ctx.app.app_context():
        if username is not None:
            try:
                count = revoke_tokens(username, actor)
            except UserError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"Revoked {count} token{'' if count == 1 else 's'} of {username!r}.")
            return
        if not revoke_token(token.strip(), actor):  # type: ignore[union-attr]
            raise click.ClickException("No such token (already revoked, or mistyped).")
    click.echo("Token revoked.")


# --- serving --------------------------------------------------------------------------------


def ensure_first_user(app: Flask) -> str | None:
    """Create ``admin`` with a random password when there is no user; return that password."""
    from cephalopod.auth.operations import count_users, create_user  # lazy: SQLAlchemy (docstring)

    with app.app_context():
        if count_users():
            return None
        password = secrets.token_urlsafe(12)
        create_user("admin", password)
        return password


def _serve_options(func: Any) -> Any:
    func = click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))(
        func
    )
    return click.option("--host", default="127.0.0.1", show_default=True)(func)


@cli.command("run")
@_serve_options
@pass_app
def run(ctx: AppContext, host: str, port: int) -> None:
    """Serve the web interface and the API (and crawl on schedule when there is no broker)."""
    from cephalopod.schema import prepare_database  # lazy: SQLAlchemy (docstring)
    from cephalopod.server import serve  # lazy: SQLAlchemy (docstring)

    app = ctx.app
    with app.app_context():
        prepare_database()
    password = ensure_first_user(app)
    if password:
        bar = "=" * 64
        click.echo(
            f"\n{bar}\n  First start: created the user 'admin' with the password\n\n"
            f"      {password}\n\n  Log in and keep it safe: it is not shown again.\n{bar}\n"
        )
    serve(app, host, port)


run_alias = click.Command(
    "runserver", callback=run.callback, params=list(run.params), help="Alias of 'run'."
)
cli.add_command(run_alias)


register_crawler(cli, pass_app)
register_geo(cli, pass_app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: settings errors end with one clear message and status 2."""
    try:
        cli.main(args=argv, prog_name="cephalopod", standalone_mode=True)
    except SettingsError as exc:
        click.echo(f"Configuration error: {exc}", err=True)
        sys.exit(2)
    finally:
        # The process ends now: its exit need not look for cycles among the objects of the
        # loaded application (SQLAlchemy, Flask: hundreds of thousands, none garbage), which
        # cost a command a quarter of a second of CPU after it had done its work (measured).
        gc.freeze()
