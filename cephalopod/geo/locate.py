"""Look addresses up in one or more .mmdb files, opened once and reused."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import maxminddb

from cephalopod.geo.countries import country_centroid
from cephalopod.geo.location import Location
from cephalopod.geo.records import location_from_record

logger = logging.getLogger(__name__)

UPDATE_HINT = "run `cephalopod geoip update`"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Dotted-quad IPv4 without leading zeros: such strings go to the C reader unparsed (fast path).
_PLAIN_IPV4 = re.compile(r"(?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3}", re.ASCII)

# IPv6 strings with these need Python's parser (brackets, scope, embedded IPv4, spaces).
_NEEDS_PARSING = re.compile(r"[\[\]%.\s]")

# How good an answer is: the first answer of the best rank wins.
_COUNTRY_ONLY, _COORDINATES, _CITY_WITH_COORDINATES = 1, 2, 3


def parse_address(ip: str | IPAddress) -> IPAddress | None:
    """Parse an address the crawler connected to ('1.2.3.4', '[::1]', '::ffff:1.2.3.4')."""
    if isinstance(ip, str):
        text = ip.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # a dual-stack socket's view of an IPv4 peer
            return ip.ipv4_mapped
        if ip.scope_id:
            return ipaddress.IPv6Address(str(ip).partition("%")[0])
    return ip


def _lookup_key(ip: object) -> tuple[str | IPAddress, int] | None:
    """What to hand the readers, and its IP version; None when ip is no address."""
    if isinstance(ip, str):  # fast paths: the C reader parses (and rejects) plain strings
        if _PLAIN_IPV4.fullmatch(ip):
            return ip, 4
        if ":" in ip and not _NEEDS_PARSING.search(ip) and ip[:7].lower() != "::ffff:":
            return ip, 6
    address = parse_address(ip) if isinstance(ip, str | IPAddress) else None
    return None if address is None else (address, address.version)


def _rank(location: Location) -> int:
    """City-level coordinates beat bare coordinates, which beat a bare country."""
    if not location.has_coordinates:
        return _COUNTRY_ONLY
    return _CITY_WITH_COORDINATES if location.city else _COORDINATES


def _with_centroid(location: Location) -> Location:
    """Fill in the country's centre when the data only knew the country."""
    centre = country_centroid(location.country_code)
    if location.has_coordinates or centre is None:
        return location
    return Location(location.country_code, location.country_name, location.city, *centre)


def default_data_files(data_dir: Path) -> list[Path]:
    """The .mmdb files `cephalopod geoip update` installed (city files sort before country)."""
    return sorted(data_dir.glob("*.mmdb")) if data_dir.is_dir() else []


class GeoLocator:
    """Locate addresses with every given .mmdb file (GeoIP2 or ip-location-db schema)."""

    def __init__(self, paths: Sequence[Path | str], *, empty_reason: str | None = None) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self._readers: list[tuple[maxminddb.Reader, int]] = []
        problems = []
        for path in self.paths:
            try:
                reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
            except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
                logger.warning("cannot open geolocation data %s: %s", path, exc)
                problems.append(f"{path}: {exc}")
                continue
            self._readers.append((reader, reader.metadata().ip_version))
        if self._readers:
            self._reason = None
        elif problems:
            self._reason = "Cannot read the geolocation data: " + "; ".join(problems)
        else:
            self._reason = empty_reason or f"No geolocation data: {UPDATE_HINT}"

    @classmethod
    def from_config(cls, geoip_database: str | Sequence[str] | None, data_dir: Path) -> GeoLocator:
        """Use GEOIP_DATABASE (a path or list of paths) if set, else the files in data_dir."""
        if geoip_database:
            paths = [geoip_database] if isinstance(geoip_database, str) else list(geoip_database)
            return cls(paths)
        return cls(
            default_data_files(data_dir),
            empty_reason=f"No geolocation data in {data_dir}: {UPDATE_HINT}",
        )

    @property
    def available(self) -> bool:
        """True when at least one file could be opened."""
        return bool(self._readers)

    @property
    def unavailable_reason(self) -> str | None:
        """Why locations are unknown, for the UI; None while available."""
        return self._reason

    def locate(self, ip: str | IPAddress) -> Location | None:
        """Locate an address; None for a malformed, private or unknown one (never raises)."""
        key = _lookup_key(ip)
        if key is None:
            return None
        address, version = key
        best: Location | None = None
        for reader, reader_version in self._readers:
            if reader_version == 4 and version == 6:
                continue
            try:
                location = location_from_record(reader.get(address))
            except (ValueError, maxminddb.InvalidDatabaseError) as exc:
                logger.debug("lookup of %s failed: %s", address, exc)
                continue
            if location is None:
                continue
            if _rank(location) == _CITY_WITH_COORDINATES:
                return location
            if best is None or _rank(location) > _rank(best):
                best = location
        return None if best is None else _with_centroid(best)

    def close(self) -> None:
        """Release the files; later lookups answer None."""
        readers, self._readers = self._readers, []
        for reader, _version in readers:
            reader.close()
        if readers:
            self._reason = "The geolocation data was closed"

    def __enter__(self) -> GeoLocator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GeoLocator({[str(p) for p in self.paths]!r}, available={self.available})"
