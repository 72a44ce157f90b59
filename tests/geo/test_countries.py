import pytest

from cephalopod.geo.countries import (
    CENTROIDS_PATH,
    country_centroid,
    country_name,
    normalize_code,
    parse_centroids,
    valid_coordinates,
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("D", None),
        ("DEU", None),
        ("01", None),
        ("", None),
        (None, None),
        (49, None),
        ("Ä1", None),
    ],
)
def test_normalize_code(code, expected):
    assert normalize_code(code) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("DE", "Germany"),
        ("fr", "France"),
        ("US", "United States"),
        ("XK", "Kosovo"),
        ("QQ", None),
        ("001", None),
        (None, None),
    ],
)
def test_country_name(code, expected):
    assert country_name(code) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("DE", (51.1657, 10.4515)),
        ("fr", (46.2276, 2.2137)),
        ("SS", (4.8539, 31.5825)),  # not in the Google table: DB-IP median
        ("QQ", None),
        (None, None),
    ],
)
def test_country_centroid(code, expected):
    assert country_centroid(code) == expected


def test_shipped_centroids_cover_the_world():
    table = parse_centroids(CENTROIDS_PATH.read_text("utf-8"))
    assert len(table) > 240
    assert {"US", "CN", "BR", "AU", "ZA", "IN", "RU", "CW", "AX"} <= table.keys()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# comment\ncode,latitude,longitude,source\nDE,51.1,10.4,x\n", {"DE": (51.1, 10.4)}),
        ("\nfr,46.2,2.2\n\n", {"FR": (46.2, 2.2)}),
        ("", {}),
    ],
)
def test_parse_centroids(text, expected):
    assert parse_centroids(text) == expected


@pytest.mark.parametrize(
    "line", ["DE,91.0,10.0", "DE,50.0", "DEU,50.0,10.0", "DE,north,10.0", "DE,50.0,181.0"]
)
def test_parse_centroids_rejects_bad_lines(line):
    with pytest.raises(ValueError, match="line 2"):
        parse_centroids(f"# header\n{line}\n")


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (52.5, 13.4, True),
        (-90.0, -180.0, True),
        (0, 0, True),
        (90.5, 0.0, False),
        (0.0, -180.5, False),
        (float("nan"), 0.0, False),
        (float("inf"), 0.0, False),
        (True, 0.0, False),
        ("52.5", 13.4, False),
        (None, None, False),
    ],
)
def test_valid_coordinates(lat, lon, expected):
    assert valid_coordinates(lat, lon) is expected
