"""A field mapped to None never leaves the hub: list, detail, statistics, trends, exports."""

from __future__ import annotations

from datetime import date

from tests.admin.conftest import SECRET
from tests.stats.seeding import add_snapshots


def test_hidden_fields_appear_nowhere(app, api, instances):
    with app.app_context():
        from cephalopod.instances.operations import get_instance

        alpha = get_instance(instances[1]).id
    # stored before the field was hidden: in crawled data, history and a stale display value
    add_snapshots(app, [(alpha, date(2026, 1, 2), {"version": "0.9", "secret": SECRET})])
    replies = {}
    for path in (
        "/api/admin/instances",
        "/api/admin/instances?sort=field:version",
        f"/api/admin/instances/{instances[1]}",
        f"/api/admin/instances/{instances[2]}",
        "/api/admin/statistics",
        "/api/admin/statistics?status=all",
        "/api/admin/statistics/trend?field=version&interval=day",
        "/api/admin/export?format=csv",
        "/api/admin/export?format=json",
    ):
        response = api(path)  # read now: a streamed reply holds its request context
        replies[path] = (response.status_code, response.get_data(as_text=True))
    for path, (status, text) in replies.items():
        assert status == 200, path
        assert SECRET not in text, path
        assert "secret" not in text.lower(), path
    for path in (
        "/api/admin/instances?sort=field:secret",
        "/api/admin/export?sort=field:secret",
        "/api/admin/statistics/trend?field=secret",
    ):
        response = api(path)
        assert response.status_code == 400, path
