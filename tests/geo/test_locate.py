import ipaddress

import pytest

from cephalopod.geo.locate import GeoLocator, parse_address
from cephalopod.geo.location import Location
from tests.geo.mmdb import LOOPBACK_RECORDS, build_test_mmdb

BERLIN = Location("DE", "Germany", "Berlin", 52.52, 13.405)
AMSTERDAM = Location("NL", "Netherlands", "Amsterdam", 52.374, 4.8897)
FRANCE_CENTRE = Location("FR", "France", None, 46.2276, 2.2137)
GERMANY_CENTRE = Location("DE", "Germany", None, 51.1657, 10.4515)
GERMANY_9E = Location("DE", "Germany", None, 51.0, 9.0)
ROME = Location("IT", "Italy", "Rome", 41.9, 12.5)

COUNTRY_ONLY = {cidr: {"country_code": r["country_code"]} for cidr, r in LOOPBACK_RECORDS.items()}
# GeoLite2-City style answer with country-level coordinates but no city.
COORDINATES_ONLY = {
    "127.0.0.2/32": {
        "country": {"iso_code": "DE"},
        "location": {"latitude": 51.0, "longitude": 9.0},
    }
}
IPV4_ONLY = {
    "127.0.0.0/24": {"country_code": "IT", "city": "Rome", "latitude": 41.9, "longitude": 12.5}
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One small .mmdb file per kind, by name."""
    folder = tmp_path_factory.mktemp("geo")
    return {
        "flat-city": build_test_mmdb(folder / "flat-city.mmdb", LOOPBACK_RECORDS, "flat"),
        "geoip2-city": build_test_mmdb(folder / "geoip2-city.mmdb", LOOPBACK_RECORDS, "geoip2"),
        "flat-country": build_test_mmdb(folder / "flat-country.mmdb", COUNTRY_ONLY, "flat"),
        "geoip2-country": build_test_mmdb(folder / "geoip2-country.mmdb", COUNTRY_ONLY, "geoip2"),
        "coordinates": build_test_mmdb(folder / "coordinates.mmdb", COORDINATES_ONLY, "raw"),
        "ipv4-only": build_test_mmdb(folder / "v4.mmdb", IPV4_ONLY, "flat", ip_version=4),
    }


def locator(files, *names):
    return GeoLocator([files[name] for name in names])


@pytest.mark.parametrize("kind", ["flat-city", "geoip2-city"])
@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("127.0.0.2", BERLIN),
        ("127.0.0.3", FRANCE_CENTRE),
        ("127.0.0.4", None),
        ("2001:db8::1", AMSTERDAM),
        ("2001:db9::1", None),
    ],
)
def test_city_files(files, kind, ip, expected):
    with locator(files, kind) as geo:
        assert geo.locate(ip) == expected


@pytest.mark.parametrize("kind", ["flat-country", "geoip2-country"])
@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("127.0.0.2", GERMANY_CENTRE),
        ("127.0.0.3", FRANCE_CENTRE),
        ("2001:db8::1", Location("NL", "Netherlands", None, 52.1326, 5.2913)),
        ("127.0.0.4", None),
    ],
)
def test_country_files_answer_the_country_centre(files, kind, ip, expected):
    with locator(files, kind) as geo:
        assert geo.locate(ip) == expected


@pytest.mark.parametrize(
    ("names", "ip", "expected"),
    [
        (["geoip2-country", "flat-city"], "127.0.0.2", BERLIN),
        (["coordinates", "flat-city"], "127.0.0.2", BERLIN),
        (["coordinates", "geoip2-country"], "127.0.0.2", GERMANY_9E),
        (["geoip2-country", "coordinates"], "127.0.0.2", GERMANY_9E),
        (["flat-country", "coordinates"], "127.0.0.3", FRANCE_CENTRE),
        (["ipv4-only", "flat-city"], "127.0.0.2", ROME),
        (["flat-city", "ipv4-only"], "127.0.0.2", BERLIN),
        (["ipv4-only", "flat-city"], "127.0.0.9", ROME),
        (["ipv4-only", "flat-city"], "2001:db8::1", AMSTERDAM),
        (["ipv4-only"], "2001:db8::1", None),
        ([], "127.0.0.2", None),
    ],
)  # fmt: skip
def test_several_files_best_answer_wins(files, names, ip, expected):
    with locator(files, *names) as geo:
        assert geo.locate(ip) == expected


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        (" 127.0.0.2 ", BERLIN),
        ("::ffff:127.0.0.2", BERLIN),
        ("::FFFF:7f00:2", BERLIN),
        ("[2001:db8::1]", AMSTERDAM),
        ("2001:DB8::1", AMSTERDAM),
        ("2001:db8::1%eth0", AMSTERDAM),
        (ipaddress.ip_address("127.0.0.2"), BERLIN),
        (ipaddress.ip_address("2001:db8::2"), AMSTERDAM),
        ("127.000.0.2", None),
        ("127.0.2", None),
        ("127.0.0.256", None),
        ("0x7f.0.0.2", None),
        ("2001:db8:::1", None),
        ("[127.0.0.2", None),
        ("localhost", None),
        ("", None),
        (None, None),
        (2130706434, None),
        (b"127.0.0.2", None),
    ],
)
def test_address_forms(files, ip, expected):
    with locator(files, "flat-city") as geo:
        assert geo.locate(ip) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ipaddress.IPv4Address("127.0.0.1")),
        ("::ffff:10.1.2.3", ipaddress.IPv4Address("10.1.2.3")),
        ("[::1]", ipaddress.IPv6Address("::1")),
        ("fe80::1%eth0", ipaddress.IPv6Address("fe80::1")),
        ("host.example", None),
    ],
)
def test_parse_address(text, expected):
    assert parse_address(text) == expected


def test_from_config_prefers_geoip_database(files, tmp_path):
    build_test_mmdb(tmp_path / "default.mmdb", IPV4_ONLY)
    for setting in (str(files["flat-city"]), [str(files["flat-city"])], (str(files["flat-city"]),)):
        with GeoLocator.from_config(setting, tmp_path) as geo:
            assert geo.locate("127.0.0.2") == BERLIN
    with GeoLocator.from_config(None, tmp_path) as geo:
        assert geo.locate("127.0.0.2") == ROME


def test_from_config_uses_every_installed_file(tmp_path):
    build_test_mmdb(tmp_path / "b-country.mmdb", COUNTRY_ONLY)
    build_test_mmdb(tmp_path / "a-city.mmdb", IPV4_ONLY, ip_version=4)
    (tmp_path / "geoip-data.json").write_text("{}")
    with GeoLocator.from_config(None, tmp_path) as geo:
        assert geo.paths == (tmp_path / "a-city.mmdb", tmp_path / "b-country.mmdb")
        assert (geo.locate("127.0.0.2"), geo.locate("2001:db8::1")) == (
            ROME,
            Location("NL", "Netherlands", None, 52.1326, 5.2913),
        )


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_without_data_the_reason_says_what_to_do(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    geo = GeoLocator.from_config(None, tmp_path / folder)
    assert not geo.available
    assert geo.locate("127.0.0.2") is None
    assert geo.unavailable_reason == (
        f"No geolocation data in {tmp_path / folder}: run `cephalopod geoip update`"
    )
    assert GeoLocator([]).unavailable_reason == "No geolocation data: run `cephalopod geoip update`"


@pytest.mark.parametrize("content", [None, b"", b"not a database\n" * 100])
def test_unreadable_files_are_reported(tmp_path, content):
    path = tmp_path / "broken.mmdb"
    if content is not None:
        path.write_bytes(content)
    geo = GeoLocator.from_config(str(path), tmp_path)
    assert not geo.available
    assert geo.unavailable_reason.startswith(f"Cannot read the geolocation data: {path}: ")
    assert geo.locate("127.0.0.2") is None


def test_one_readable_file_is_enough(files, tmp_path):
    with GeoLocator([tmp_path / "missing.mmdb", files["flat-city"]]) as geo:
        assert geo.available
        assert geo.unavailable_reason is None
        assert geo.locate("127.0.0.2") == BERLIN


def test_close_releases_files(files):
    geo = locator(files, "flat-city")
    assert geo.locate("127.0.0.2") == BERLIN
    geo.close()
    geo.close()
    assert not geo.available
    assert geo.unavailable_reason == "The geolocation data was closed"
    assert geo.locate("127.0.0.2") is None
