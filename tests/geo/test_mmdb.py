import ipaddress

import maxminddb
import pytest

from cephalopod.geo.locate import GeoLocator
from cephalopod.geo.location import Location
from tests.geo.mmdb import LOOPBACK_RECORDS, build_test_geoip_dir, build_test_mmdb


@pytest.mark.parametrize(
    ("schema", "ip", "expected"),
    [
        ("flat", "127.0.0.2", {"country_code": "DE", "city": "Berlin", "latitude": 52.52}),
        ("flat", "127.0.0.3", {"country_code": "FR", "city": ""}),
        ("flat", "2001:db8::7", {"country_code": "NL", "city": "Amsterdam"}),
        ("geoip2", "127.0.0.2", {"city": {"geoname_id": 1,
                                          "names": {"en": "Berlin", "de": "Berlin"}},
                                 "location": {"latitude": 52.52, "longitude": 13.405,
                                              "accuracy_radius": 20}}),
        ("geoip2", "127.0.0.3", {"country": {"geoname_id": 1, "iso_code": "FR",
                                             "names": {"en": "France"}}}),
        ("raw", "127.0.0.3", {"country_code": "FR"}),
    ],
)  # fmt: skip
def test_written_records_are_found(tmp_path, schema, ip, expected):
    path = build_test_mmdb(tmp_path / "t.mmdb", LOOPBACK_RECORDS, schema)
    with maxminddb.open_database(path) as reader:
        record = reader.get(ip)
        assert reader.get("127.0.0.4") is None
    assert expected.items() <= record.items()


@pytest.mark.parametrize("schema", ["flat", "geoip2"])
def test_country_only_records_have_no_coordinates(tmp_path, schema):
    path = build_test_mmdb(tmp_path / "t.mmdb", LOOPBACK_RECORDS, schema)
    with maxminddb.open_database(path) as reader:
        record = reader.get(ipaddress.ip_address("127.0.0.3"))
    assert "latitude" not in record
    assert "location" not in record


def test_ipv4_only_file(tmp_path):
    records = {"127.0.0.0/29": {"country_code": "DE"}}
    path = build_test_mmdb(tmp_path / "v4.mmdb", records, ip_version=4)
    with maxminddb.open_database(path) as reader:
        assert reader.metadata().ip_version == 4
        assert reader.get("127.0.0.7") == {
            "country_code": "DE",
            "state1": "",
            "state2": "",
            "city": "",
            "postcode": "",
            "timezone": "",
        }
        assert reader.get("127.0.0.8") is None


def test_ipv4_only_file_refuses_ipv6_networks(tmp_path):
    with pytest.raises(ValueError, match="IPv6"):
        build_test_mmdb(tmp_path / "v4.mmdb", LOOPBACK_RECORDS, ip_version=4)


def test_geoip_dir_looks_installed(tmp_path):
    folder = build_test_geoip_dir(tmp_path / "instance" / "geoip")
    with GeoLocator.from_config(None, folder) as geo:
        assert geo.locate("127.0.0.2") == Location("DE", "Germany", "Berlin", 52.52, 13.405)
        assert geo.locate("127.0.0.4") is None
