"""GET /api/admin/export: CSV and JSON, every matching instance, safe for spreadsheets."""

from __future__ import annotations

import csv
import io
import json

from cephalopod.admin.export import BASE_COLUMNS, safe_cell

HEADER = [*BASE_COLUMNS, "Cores", "Dash", "Events", "Formula", "Version"]


def read_csv(response):
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert response.headers["Content-Disposition"].endswith('.csv"')
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: spreadsheets read it as UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_csv_export(api, instances):
    table = read_csv(api("/api/admin/export"))  # csv is the default
    assert table[0] == HEADER
    assert len(table) == 6  # header and every instance (all pages, any status)
    rows = {row[0]: dict(zip(HEADER, row, strict=True)) for row in table[1:]}
    alpha, beta, epsilon = rows[instances[1]], rows[instances[2]], rows[instances[5]]
    assert [row[0] for row in table[1:]] == [instances[n] for n in (1, 2, 4, 5, 3)]
    assert alpha == {
        "uuid": instances[1], "url": "https://alpha.example.org", "organization": "Alpha",
        "contact": "Contact 1", "email": "admin1@corp1.example", "enabled": "true",
        "registered": "2026-01-01T08:00:00Z", "last_crawl": "2026-01-10T09:00:00Z",
        "last_success": "", "crawl_status": "ok", "crawl_error": "",
        "consecutive_failures": "0", "country_code": "DE", "country_name": "Germany",
        "latitude": "", "longitude": "", "duplicate_of": "", "local_address": "false",
        "Cores": "3", "Dash": "",
        "Events": "10", "Formula": "", "Version": "1.0",
    }  # fmt: skip
    assert beta["duplicate_of"] == instances[1]
    assert (beta["Events"], rows[instances[3]]["enabled"]) == ("2.5", "false")
    # text that a spreadsheet would run is defused; numbers stay numbers
    assert (epsilon["Formula"], epsilon["Dash"], epsilon["Events"]) == (
        "'=HYPERLINK(1)",
        "'-5",
        "-1",
    )


def test_export_follows_the_list_filters_and_sort(api, instances):
    table = read_csv(api("/api/admin/export?format=csv&country=DE&sort=field:events&order=desc"))
    assert [row[0] for row in table[1:]] == [instances[n] for n in (3, 1, 5)]
    assert read_csv(api("/api/admin/export?status=disabled&page=2&per_page=1"))[1:] == [
        read_csv(api("/api/admin/export?status=disabled"))[1]
    ]  # paging parameters are accepted and ignored: an export is every page


def test_json_export_holds_the_same_table(api, instances):
    response = api("/api/admin/export?format=json&sort=registered")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].endswith('.json"')
    records = json.loads(response.get_data())
    assert [list(record) for record in records] == [HEADER] * 5
    assert records[0]["uuid"] == instances[1]
    assert records[0]["Cores"] == 3
    assert records[0]["enabled"] is True
    assert records[1]["Events"] == 2.5
    assert records[3]["Version"] is None  # never crawled
    assert records[4]["Formula"] == "=HYPERLINK(1)"  # JSON needs no defusing


def test_empty_export(api, instances):
    assert read_csv(api("/api/admin/export?q=nobody")) == [HEADER]
    assert json.loads(api("/api/admin/export?format=json&q=nobody").get_data()) == []


def test_export_invalid_parameters(api, instances):
    for query, name in (("format=xml", "format"), ("sort=x", "sort"), ("bogus=1", "bogus")):
        response = api(f"/api/admin/export?{query}")
        assert (response.status_code, response.json["parameter"]) == (400, name), query


def test_labels_that_clash_are_told_apart(make_app, auth_for):
    from tests.stats.seeding import insert_instances, instance_row

    settings = {"a": {"label": "Same"}, "b": {"label": "Same"}, "c": {"label": "url"}}
    app = make_app(CRAWLED_FIELDS_SETTINGS=settings)
    from cephalopod.stats.fields import parse_field_settings

    insert_instances(app, [instance_row(1, crawled_data={"a": 1, "b": 2, "c": 3})],
                     parse_field_settings(settings))  # fmt: skip
    response = app.test_client().get("/api/admin/export", headers=auth_for(app))
    assert read_csv(response)[0][len(BASE_COLUMNS) :] == ["Same", "Same (b)", "url (c)"]


def test_safe_cell():
    for value, cell in [
        ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=b", "a=b"), ("", ""), (None, ""),
        (-1, -1), (2.5, 2.5), (True, "true"), (False, "false"),
    ]:  # fmt: skip
        assert safe_cell(value) == cell
