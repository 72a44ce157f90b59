import pytest

from cephalopod.geo.build_centroids import (
    iter_city_points,
    median_centroids,
    merge_centroids,
    parse_coordinate_table,
    render_csv,
)
from cephalopod.geo.countries import parse_centroids
from tests.geo.mmdb import build_test_mmdb


def test_parse_coordinate_table_skips_empty_coordinates():
    data = {
        "DE": {"coordinate": ["51.165691", "10.451526"], "name": "Germany"},
        "um": {"coordinate": ["", ""], "name": "U.S. Minor Outlying Islands"},
    }
    assert parse_coordinate_table(data) == {"DE": (51.165691, 10.451526)}


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([("CW", 12.0, -69.0)], {"CW": (12.0, -69.0)}),
        ([("CW", 12.0, -69.0), ("CW", 13.0, -68.0), ("CW", 40.0, 10.0)], {"CW": (13.0, -68.0)}),
        ([("AX", 60.0, 20.0), ("SX", 18.0, -63.0), ("AX", 61.0, 19.0)],
         {"AX": (60.5, 19.5), "SX": (18.0, -63.0)}),
        ([], {}),
    ],
)  # fmt: skip
def test_median_centroids(points, expected):
    assert median_centroids(points) == expected


def test_merge_prefers_primary_and_sorts():
    primary = {"FR": (46.0, 2.0), "DE": (51.0, 10.0)}
    merged = merge_centroids(primary, {"DE": (0, 0), "AX": (60, 20)})
    assert list(merged.items()) == [
        ("AX", (60, 20, "dbip-median")),
        ("DE", (51.0, 10.0, "google-dspl")),
        ("FR", (46.0, 2.0, "google-dspl")),
    ]


def test_render_csv_round_trips_through_the_loader():
    text = render_csv({"AX": (60.12346, 19.9, "dbip-median")}, "# header\n")
    assert text.startswith("# header\ncode,latitude,longitude,source\n")
    assert parse_centroids(text) == {"AX": (60.1235, 19.9)}


def test_iter_city_points_reads_flat_city_files(tmp_path):
    records = {
        "127.0.0.2/32": {"country_code": "DE", "latitude": 52.5, "longitude": 13.4},
        "127.0.0.3/32": {"country_code": "FR"},
        "2001:db8::/32": {"country_code": "nl", "latitude": 52.4, "longitude": 4.9},
    }
    path = build_test_mmdb(tmp_path / "city.mmdb", records)
    assert sorted(iter_city_points(path)) == [("DE", 52.5, 13.4), ("NL", 52.4, 4.9)]
