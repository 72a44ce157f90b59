"""Offline country facts: English names (from Babel) and country centres (shipped CSV)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

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
            lat, lon = float(fields[1]), float(fields[2])
        except (IndexError, ValueError):
            code = None
        if code is None or not valid_coordinates(lat, lon):
            raise ValueError(f"line {number}: not a country centre: {line!r}")
        table[code] = (lat, lon)
    return table


def valid_coordinates(lat: object, lon: object) -> bool:
    """True when lat/lon are finite numbers within the globe's ranges."""
    numbers = (type(lat) is float and type(lon) is float) or all(  # fast path first
        isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)
    )
    return numbers and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0  # type: ignore[operator]


@functools.cache
def _centroids() -> dict[str, tuple[float, float]]:
    """Load the shipped centroid table once."""
    return parse_centroids(CENTROIDS_PATH.read_text("utf-8"))


def country_centroid(code: str | None) -> tuple[float, float] | None:
    """(latitude, longitude) of a country's centre, or None when unknown."""
    code = normalize_code(code)
    return _centroids().get(code) if code else None
