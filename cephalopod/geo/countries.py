"""Offline country facts: English names (from Babel) and country centres (shipped CSV)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TypeGuard

from babel import Locale

logger = logging.getLogger(__name__)

CENTROIDS_PATH = Path(__file__).resolve().parent / "data" / "country_centroids.csv"


def normalize_code(code: object) -> str | None:
    """Return an upper-case ISO 3166-1 alpha-2 code, or None for anything else."""
    if not isinstance(code, str) or len(code) != 2 or not code.isascii() or not code.isalpha():
        return None
    return code.upper()


@functools.cache
def _territories() -> dict[str, str]:
    """Load Babel's English territory names once."""
    return dict(Locale("en").territories)


@functools.lru_cache(maxsize=512)
def country_name(code: str | None) -> str | None:
    """English name of a country code, or None when the code is unknown."""
    code = normalize_code(code)
    return _territories().get(code) if code else None


def parse_centroids(text: str) -> dict[str, tuple[float, float]]:
    """Parse the centroid CSV (comment lines start with '#'; columns code,latitude,longitude)."""
    table: dict[str, tuple[float, float]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("code,"):
            continue
        fields = line.split(",")
        code = normalize_code(fields[0])
        try:
            point = coordinates(float(fields[1]), float(fields[2]))
        except (IndexError, ValueError):
            point = None
        if code is None or point is None:
            raise ValueError(f"line {number}: not a country centre: {line!r}")
        table[code] = point
    return table


def _real(value: object) -> TypeGuard[int | float]:
    """An int or a float, not a bool (NaN and infinities fail the range checks after)."""
    return type(value) is float or (isinstance(value, int | float) and not isinstance(value, bool))


def coordinates(lat: object, lon: object) -> tuple[float, float] | None:
    """(lat, lon) as floats when both are finite numbers within the globe's ranges, else None."""
    if _real(lat) and _real(lon) and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
        return float(lat), float(lon)
    return None


def valid_coordinates(lat: object, lon: object) -> bool:
    """True when lat/lon are finite numbers within the globe's ranges."""
    return coordinates(lat, lon) is not None


@functools.cache
def _centroids() -> dict[str, tuple[float, float]]:
    """Load the shipped centroid table once."""
    return parse_centroids(CENTROIDS_PATH.read_text("utf-8"))


def country_centroid(code: str | None) -> tuple[float, float] | None:
    """(latitude, longitude) of a country's centre, or None when unknown."""
    code = normalize_code(code)
    return _centroids().get(code) if code else None
