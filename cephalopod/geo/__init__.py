"""Offline geolocation of instance addresses (DB-IP Lite by default, or the user's .mmdb)."""

from cephalopod.geo.locate import GeoLocator
from cephalopod.geo.location import DATA_CREDIT_TEXT, DATA_CREDIT_URL, Location

__all__ = ["DATA_CREDIT_TEXT", "DATA_CREDIT_URL", "GeoLocator", "Location"]
