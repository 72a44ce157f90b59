"""GET /api/admin/instances: filters, sorts, paging, items and invalid parameters."""

from __future__ import annotations

ITEM_KEYS = {
    "uuid", "url", "organization", "contact", "email", "enabled", "registered", "last_crawl",
    "last_success", "crawl_status", "crawl_error", "consecutive_failures", "country_code",
    "country_name", "latitude", "longitude", "duplicate_of", "local_address", "fields",
}  # fmt: skip


def numbers(response, instances):
    assert response.status_code == 200, response.json
    by_uuid = {uuid: n for n, uuid in instances.items()}
    return [by_uuid[item["uuid"]] for item in response.json["items"]]


QUERIES = [
    ("", [1, 2, 4, 5, 3]),  # organization, case-insensitive
    ("order=desc", [3, 5, 4, 2, 1]),
    ("sort=registered", [1, 2, 3, 4, 5]),
    ("sort=registered&order=desc", [5, 4, 3, 2, 1]),
    ("sort=url", [1, 4, 5, 3, 2]),
    ("sort=email", [1, 2, 3, 4, 5]),
    ("sort=contact&order=desc", [5, 4, 3, 2, 1]),
    # missing values last in both orders
    ("sort=last_crawl", [3, 1, 2, 5, 4]),
    ("sort=last_crawl&order=desc", [5, 2, 1, 3, 4]),
    ("sort=country", [2, 1, 3, 5, 4]),
    ("sort=country&order=desc", [5, 3, 1, 2, 4]),
    # numbers numerically (-1 < 2.5 < 10), then other values, then none
    ("sort=field:events", [5, 2, 1, 3, 4]),
    ("sort=field:events&order=desc", [3, 1, 2, 5, 4]),
    ("sort=field:version", [5, 1, 3, 2, 4]),
    ("sort=field:version&order=desc", [2, 3, 1, 5, 4]),
    ("sort=field:cores", [1, 2, 3, 4, 5]),  # only 1 has one (summed)
    # filters
    ("status=enabled", [1, 2, 4, 5]),
    ("status=disabled", [3]),
    ("status=all", [1, 2, 4, 5, 3]),
    ("q=ALPHA", [1, 2]),  # organization or URL, any case
    ("q=corp5", [5]),  # e-mail
    ("q=contact%203", [3]),
    ("q=%25", []),  # LIKE wildcards are literal
    ("q=_", []),
    ("q=%20%20", [1, 2, 4, 5, 3]),  # blank: no filter
    ("country=de", [1, 5, 3]),
    ("country=DE&sort=field:events", [5, 1, 3]),
    ("health=never", [4]),
    ("health=error", [3]),
    ("health=ok&status=enabled", [1, 2, 5]),
    ("error=timeout%20after%2010%20s", []),  # no instance failed so
    ("duplicates=1", [1, 2]),
    ("duplicates=0", [1, 2, 4, 5, 3]),
    ("per_page=2", [1, 2]),
    ("per_page=2&page=2", [4, 5]),
    ("per_page=2&page=3", [3]),
    ("page=9", []),
]


def test_filters_and_sorts(api, instances):
    # one instances, many queries: the table reads better than 70 separate set-ups run faster
    for query, expected in QUERIES:
        assert numbers(api(f"/api/admin/instances?{query}"), instances) == expected, query


def test_reply_shape_and_items(api, instances):
    reply = api("/api/admin/instances?per_page=2&page=2").json
    assert set(reply) == {"total", "page", "per_page", "items"}
    assert (reply["total"], reply["page"], reply["per_page"]) == (5, 2, 2)
    by_uuid = {item["uuid"]: item for item in api("/api/admin/instances").json["items"]}
    for item in by_uuid.values():
        assert set(item) == ITEM_KEYS
    alpha, beta = by_uuid[instances[1]], by_uuid[instances[2]]
    assert alpha["fields"] == {"cores": 3, "events": 10, "version": "1.0"}
    assert beta["fields"] == {"events": 2.5, "version": "2.0"}
    assert by_uuid[instances[4]]["fields"] == {}
    assert by_uuid[instances[5]]["fields"] == {
        "dash": "-5",
        "events": -1,
        "formula": "=HYPERLINK(1)",
        "version": 3,
    }
    assert (alpha["duplicate_of"], beta["duplicate_of"]) == (None, instances[1])
    assert alpha["registered"] == "2026-01-01T08:00:00Z"
    assert alpha["last_crawl"] == "2026-01-10T09:00:00Z"
    assert by_uuid[instances[4]]["last_crawl"] is None
    assert (alpha["country_code"], alpha["country_name"], alpha["enabled"]) == (
        "DE",
        "Germany",
        True,
    )
    assert by_uuid[instances[3]]["enabled"] is False


def test_total_counts_all_pages(api, instances):
    reply = api("/api/admin/instances?country=DE&per_page=1").json
    assert (reply["total"], len(reply["items"])) == (3, 1)


def test_a_list_valued_field_without_aggregation_is_null(api, app, registry):
    from tests.stats.seeding import insert_instances, instance_row

    insert_instances(app, [instance_row(1, crawled_data={"langs": ["en", "fr"], "n": 1})], registry)
    (item,) = api("/api/admin/instances").json["items"]
    assert item["fields"] == {"langs": None, "n": 1}


INVALID = [
    ("status=bogus", "status"),
    ("status=all&status=enabled", "status"),
    ("health=sick", "health"),
    ("country=DEU", "country"),
    ("country=1", "country"),
    ("sort=name", "sort"),
    ("sort=field:", "sort"),
    ("sort=field:nonexistent", "sort"),
    ("sort=field:secret", "sort"),
    ("order=up", "order"),
    ("page=0", "page"),
    ("page=x", "page"),
    ("page=-1", "page"),
    ("per_page=501", "per_page"),
    ("per_page=0", "per_page"),
    ("per_page=1.5", "per_page"),
    ("duplicates=2", "duplicates"),
    ("q=" + "x" * 201, "q"),
    ("error=" + "x" * 501, "error"),
    ("error=a&error=b", "error"),
    ("error=a%00b", "error"),
    ("q=a%00b", "q"),
    ("colour=red", "colour"),
]


def test_invalid_parameters_are_400_naming_them(api, instances):
    for query, parameter in INVALID:
        response = api(f"/api/admin/instances?{query}")
        assert response.status_code == 400, query
        assert response.json["parameter"] == parameter, query
        assert parameter in response.json["error"], query
