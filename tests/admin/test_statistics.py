"""GET /api/admin/statistics, its trend, the cache's invalidation and the public statistics."""

from __future__ import annotations

import time
import uuid
from datetime import date

import sqlalchemy as sa

from cephalopod.crawler.results import FetchResult
from cephalopod.crawler.store import store_results
from cephalopod.db import db, utcnow
from cephalopod.instances.models import Instance
from cephalopod.stats import cache, queries
from cephalopod.stats.cache import MAX_AGE
from cephalopod.stats.fields import parse_field_settings
from tests.stats.seeding import add_snapshots


def test_statistics_shape(api, instances):
    reply = api("/api/admin/statistics").json
    assert set(reply) == {"instances", "active", "countries", "registrations", "charts"}
    assert (reply["instances"], reply["active"]) == (5, 4)
    assert reply["countries"] == [
        {"code": "DE", "name": "Germany", "count": 2, "percent": 50.0},
        {"code": "FR", "name": "France", "count": 1, "percent": 25.0},
        {"code": None, "name": "Unknown", "count": 1, "percent": 25.0},
    ]
    assert reply["registrations"][0] == {"date": "2026-01-01", "count": 1, "total": 1}
    assert reply["registrations"][-1] == {"date": "2026-01-05", "count": 1, "total": 5}
    assert [chart["field"] for chart in reply["charts"]] == ["version", "events"]
    for chart in reply["charts"]:
        assert set(chart) == {
            "field", "label", "type", "aggregation", "aggregate_by", "x_label", "y_label", "data"
        }  # fmt: skip
    version, events = reply["charts"]
    assert version["data"] == [
        {"category": "1.0", "value": 1},
        {"category": "2.0", "value": 1},
        {"category": 3, "value": 1},
        {"category": "Unknown", "value": 1},
    ]
    assert events["data"] == [
        {"category": "Germany", "value": 9},
        {"category": "France", "value": 2.5},
    ]
    everyone = api("/api/admin/statistics?status=all").json
    assert sum(c["count"] for c in everyone["countries"]) == 5


def test_statistics_invalid_parameters(api, instances):
    for query, name in (("status=some", "status"), ("field=x", "field")):
        response = api(f"/api/admin/statistics?{query}")
        assert (response.status_code, response.json["parameter"]) == (400, name)


def test_the_cache_follows_every_change(app, client, api, instances):
    def counts():
        reply = api("/api/admin/statistics").json
        return reply["instances"], reply["active"], reply["charts"][0]["data"][0]

    assert counts() == (5, 4, {"category": "1.0", "value": 1})
    body = {"url": "https://new.example.org", "contact": "N", "email": "n@x.org",
            "organization": "New"}  # fmt: skip
    new = client.post("/api/instance/", json=body).json["uuid"]
    assert counts()[:2] == (6, 5)  # registration
    assert api(f"/api/admin/instances/{new}", "PATCH", json={"enabled": False}).status_code == 200
    assert counts()[:2] == (6, 4)  # edit
    assert client.delete(f"/api/instance/{instances[5]}").status_code == 204
    assert counts()[:2] == (5, 3)  # deletion
    with app.app_context(), db.engine.begin() as conn:  # a crawl store, seen by its timestamp
        from cephalopod.stats.cache import touch_data_version

        conn.execute(
            sa.text("UPDATE instance_fields SET value_text = '\"1.1\"' WHERE field = 'version'")
        )
        touch_data_version(conn)
    assert counts()[2] == {"category": "1.1", "value": 2}


def test_the_cache_sees_a_crawl_store_and_any_other_write_within_max_age(
    app, api, instances, monkeypatch
):
    """The crawl store replaces the data token; a write that bypasses it waits for MAX_AGE.

    (The guard no longer watches the latest crawl time: ``last_crawl_at`` has no index, so
    that crawls can update their rows in place, and reading it would scan the table.)
    """

    def first_country():
        return api("/api/admin/statistics").json["charts"][1]["data"][0]["category"]

    def rename(name):  # manual SQL: neither the token nor the guard sees it
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(
                sa.update(table).where(table.c.country_code == "DE").values(country_name=name)
            )

    table = Instance.__table__
    assert first_country() == "Germany"
    rename("DE")
    assert first_country() == "Germany"  # cached
    with app.app_context(), db.engine.begin() as conn:
        iid = conn.scalar(sa.select(table.c.id).limit(1))
        failed = FetchResult(iid, False, None, "HTTP 500 from /x", None, utcnow(), 0.1)
        store_results(conn, [failed], parse_field_settings({}))
    assert first_country() == "DE"
    rename("Deutschland")
    assert first_country() == "DE"
    later = time.monotonic() + MAX_AGE
    monkeypatch.setattr(cache.time, "monotonic", lambda: later)
    assert first_country() == "Deutschland"


def test_a_crawl_recomputes_the_charts_but_not_the_registrations(
    app, client, api, instances, registry, monkeypatch
):
    """Registrations and counts are cached apart: only registration, edit and deletion move them."""
    computed: list[int] = []
    count_registrations = queries.registrations

    def spy() -> list:
        computed.append(1)
        return count_registrations()

    monkeypatch.setattr(queries, "registrations", spy)

    def stats():
        return api("/api/admin/statistics").json

    first = stats()
    assert len(computed) == 1
    with app.app_context(), db.engine.begin() as conn:  # a crawl batch with new data
        iid = conn.scalar(sa.select(Instance.id).where(Instance.uuid == _uuid(instances[1])))
        crawled = {"version": "9.9", "events": 10}
        store_results(conn, [FetchResult(iid, True, crawled, None, None, utcnow(), 0.1)], registry)
    after_crawl = stats()
    assert {"category": "9.9", "value": 1} in after_crawl["charts"][0]["data"]  # recomputed
    assert after_crawl["registrations"] == first["registrations"]
    assert (after_crawl["instances"], after_crawl["active"]) == (5, 4)
    assert len(computed) == 1  # from the cache
    body = {"url": "https://new.example.org", "contact": "N", "email": "n@x.org",
            "organization": "New"}  # fmt: skip
    new = client.post("/api/instance/", json=body).json["uuid"]
    assert stats()["registrations"][-1]["total"] == first["registrations"][-1]["total"] + 1
    assert len(computed) == 2
    assert api(f"/api/admin/instances/{new}", "PATCH", json={"enabled": False}).status_code == 200
    assert (stats()["instances"], stats()["active"]) == (6, 4)  # an edit moves the counts


def _uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text)


def test_trend_endpoint(api, app, instances):
    with app.app_context():
        from cephalopod.instances.operations import get_instance

        ids = [get_instance(instances[n]).id for n in (1, 2)]
    add_snapshots(
        app,
        [
            (ids[0], date(2026, 1, 3), {"version": "1.0"}),
            (ids[1], date(2026, 2, 3), {"version": 2}),
        ],
    )
    reply = api("/api/admin/statistics/trend?field=version").json
    assert reply == {
        "field": "version",
        "label": "Version",
        "interval": "month",
        "periods": ["2026-01", "2026-02"],
        "series": [
            {"category": "1.0", "counts": [1, 0], "percents": [100.0, 0.0]},
            {"category": 2, "counts": [0, 1], "percents": [0.0, 100.0]},
        ],
    }
    weekly = api("/api/admin/statistics/trend?field=instances&interval=week&status=all").json
    assert weekly["periods"][0] == "2026-W01"
    assert weekly["series"][0]["category"] == "Active instances"


def test_trend_invalid_parameters(api, instances):
    for query, name in (
        ("", "field"),
        ("field=", "field"),
        ("field=secret", "field"),
        ("field=nothing", "field"),
        ("field=version&interval=year", "interval"),
        ("field=version&status=x", "status"),
        ("field=version&colour=red", "colour"),
    ):
        response = api(f"/api/admin/statistics/trend?{query}")
        assert (response.status_code, response.json["parameter"]) == (400, name), query


def test_public_statistics_are_off_by_default(client, instances):
    response = client.get("/api/statistics")
    assert (response.status_code, response.json) == (404, {"error": "Not found"})


def test_public_statistics(make_app, registry):
    from tests.admin.conftest import SETTINGS

    app = make_app(CRAWLED_FIELDS_SETTINGS=SETTINGS, PUBLIC_STATISTICS=True)
    from tests.stats.seeding import insert_instances, instance_row

    insert_instances(
        app,
        [instance_row(1, country_code="CH", country_name="Switzerland", latitude=46.2,
                      longitude=6.14, crawled_data={"version": "1.0"})],
        registry,
    )  # fmt: skip
    client = app.test_client()
    response = client.get("/api/statistics")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    reply = response.json
    assert set(reply) == {"instances", "active", "countries", "registrations", "charts"}
    assert reply["countries"] == [
        {"code": "CH", "name": "Switzerland", "count": 1, "percent": 100.0}
    ]
    text = response.get_data(as_text=True)
    for private in (
        "indico1.example.org",
        "Organization 1",
        "Contact 1",
        "admin1@",
        "46.2",
        "6.14",
    ):
        assert private not in text
    assert client.get("/api/statistics?status=x").status_code == 400


def test_a_configured_field_that_no_instance_reports_has_no_chart(make_app, auth_for, registry):
    """Issue 13: such a field is ignored everywhere, as a name matching no crawled field."""
    from tests.admin.conftest import SETTINGS
    from tests.stats.seeding import insert_instances, instance_row

    settings = {**SETTINGS, "unreported": {"chart": True}, "unseen": {"chart": True,
                "chart_aggregation": "max", "chart_aggregate_by": "version"}}  # fmt: skip
    app = make_app(CRAWLED_FIELDS_SETTINGS=settings, PUBLIC_STATISTICS=True)
    rows = [instance_row(1, crawled_data={"version": "1.0"}),
            instance_row(2, crawled_data={"version": "2.0", "events": 3})]  # fmt: skip
    insert_instances(app, rows, parse_field_settings(settings))
    headers = auth_for(app)
    client = app.test_client()
    for path in ("/api/admin/statistics", "/api/admin/statistics?status=all", "/api/statistics"):
        reply = client.get(path, headers=headers).json
        assert [chart["field"] for chart in reply["charts"]] == ["version", "events"], path
    listed = client.get("/api/admin/instances", headers=headers).json["items"]
    assert {name for item in listed for name in item["fields"]} == {"version", "events"}
    export = client.get("/api/admin/export?format=json", headers=headers).json
    assert not {"Unreported", "Unseen"} & set(export[0])
