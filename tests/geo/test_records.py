import pytest

from cephalopod.geo.location import Location
from cephalopod.geo.records import location_from_record

BERLIN = Location("DE", "Germany", "Berlin", 52.52, 13.405)
GERMANY = Location("DE", "Germany", None, None, None)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(
            {
                "country_code": "DE",
                "state1": "Berlin",
                "state2": "",
                "city": "Berlin",
                "postcode": "",
                "latitude": 52.52,
                "longitude": 13.405,
                "timezone": "",
            },
            BERLIN,
            id="flat-city",
        ),
        pytest.param({"country_code": "DE"}, GERMANY, id="flat-country"),
        pytest.param({"country_code": "de", "city": " "}, GERMANY, id="flat-blank-city"),
        pytest.param(
            {"country_code": "DE", "city": "Berlin", "latitude": 152.0, "longitude": 13.4},
            Location("DE", "Germany", "Berlin", None, None),
            id="flat-bad-coordinates",
        ),
        pytest.param({"country_code": ""}, None, id="flat-no-country"),
        pytest.param(
            {"country_code": "QQ"}, Location("QQ", None, None, None, None), id="flat-unknown"
        ),
        pytest.param(
            {
                "city": {"geoname_id": 2950159, "names": {"en": "Berlin", "de": "Berlin"}},
                "country": {"iso_code": "DE", "names": {"en": "Germany", "fr": "Allemagne"}},
                "location": {"latitude": 52.52, "longitude": 13.405, "accuracy_radius": 20},
                "registered_country": {"iso_code": "DE", "names": {"en": "Germany"}},
            },
            BERLIN,
            id="geoip2-city",
        ),
        pytest.param(
            {"country": {"iso_code": "DE", "names": {"en": "Federal Republic"}}},
            Location("DE", "Federal Republic", None, None, None),
            id="geoip2-country-name-from-record",
        ),
        pytest.param(
            {"country": {"iso_code": "DE", "names": {"de": "Deutschland"}}},
            GERMANY,
            id="geoip2-country-name-from-babel",
        ),
        pytest.param(
            {
                "registered_country": {"iso_code": "DE", "names": {"en": "Germany"}},
                "city": {"names": {"en": "Berlin"}},
                "location": {"latitude": 52.52, "longitude": 13.405},
            },
            GERMANY,
            id="geoip2-registered-country-only",
        ),
        pytest.param(
            {
                "country": {"iso_code": "DE"},
                "location": {"latitude": 51.0, "longitude": 9.0, "accuracy_radius": 1000},
            },
            Location("DE", "Germany", None, 51.0, 9.0),
            id="geoip2-coordinates-without-city",
        ),
        pytest.param({"continent": {"code": "EU"}}, None, id="geoip2-continent-only"),
        pytest.param({"autonomous_system_number": 3320}, None, id="asn-record"),
        pytest.param(None, None, id="none"),
        pytest.param("DE", None, id="not-a-map"),
    ],
)
def test_location_from_record(record, expected):
    assert location_from_record(record) == expected
