"""The answer of a geolocation lookup, and the credit its default data requires."""

from __future__ import annotations

from dataclasses import dataclass

#: DB-IP Lite is CC BY 4.0: pages that show locations must link to DB-IP with this text.
DATA_CREDIT_TEXT = "IP Geolocation by DB-IP"
DATA_CREDIT_URL = "https://db-ip.com"


@dataclass(frozen=True, slots=True)
class Location:
    """Where an address is: country always when known, city and coordinates when possible.

    ``latitude``/``longitude`` are the city's when the data has them, else the country's
    centre; ``city`` is None when the data only knows the country.
    """

    country_code: str | None
    country_name: str | None
    city: str | None
    latitude: float | None
    longitude: float | None

    @property
    def has_coordinates(self) -> bool:
        """True when the location can be drawn on a map."""
        return self.latitude is not None and self.longitude is not None
