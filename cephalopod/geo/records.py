"""Turn a raw .mmdb record of either supported schema into a Location.

Supported: MaxMind's GeoIP2/GeoLite2 schema (also used by DB-IP's own .mmdb files) and
ip-location-db's flat schema (country_code, state1, state2, city, postcode, latitude,
longitude, timezone).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cephalopod.geo.countries import coordinates, country_name, normalize_code
from cephalopod.geo.location import Location

logger = logging.getLogger(__name__)


def location_from_record(record: object) -> Location | None:
    """Return the record's raw Location (no centroid filled in), or None if it has no country."""
    if not isinstance(record, Mapping):
        return None
    if "country_code" in record:
        return _from_flat(record)
    return _from_geoip2(record)


def _text(value: object) -> str | None:
    """A non-empty string, else None (flat files use '' for unknown)."""
    return (value.strip() or None) if isinstance(value, str) else None


def _coordinates(lat: object, lon: object) -> tuple[float | None, float | None]:
    """Both coordinates as floats when valid, else (None, None)."""
    return coordinates(lat, lon) or (None, None)


def _from_flat(record: Mapping[str, Any]) -> Location | None:
    """ip-location-db: {'country_code': 'DE', 'city': 'Berlin', 'latitude': 52.5, ...}."""
    code = normalize_code(record.get("country_code"))
    if code is None:
        return None
    lat, lon = _coordinates(record.get("latitude"), record.get("longitude"))
    return Location(code, country_name(code), _text(record.get("city")), lat, lon)


def _english_name(entity: Mapping[str, Any]) -> str | None:
    """The 'en' entry of a GeoIP2 'names' map."""
    names = entity.get("names")
    return _text(names.get("en")) if isinstance(names, Mapping) else None


def _from_geoip2(record: Mapping[str, Any]) -> Location | None:
    """GeoIP2: country (or registered_country) / city / location sub-maps."""
    for key in ("country", "registered_country", "represented_country"):
        country = record.get(key)
        if isinstance(country, Mapping) and normalize_code(country.get("iso_code")):
            break
    else:
        return None
    code = normalize_code(country.get("iso_code"))
    name = _english_name(country) or country_name(code)
    if key != "country":  # city and coordinates do not belong to a merely registered country
        return Location(code, name, None, None, None)
    city, location = record.get("city"), record.get("location")
    city_name = _english_name(city) if isinstance(city, Mapping) else None
    lat = lon = None
    if isinstance(location, Mapping):
        lat, lon = _coordinates(location.get("latitude"), location.get("longitude"))
    return Location(code, name, city_name, lat, lon)
