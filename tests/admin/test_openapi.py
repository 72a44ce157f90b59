"""The OpenAPI document describes every route under /api, and only existing ones."""

from __future__ import annotations

import re

from flask import Flask

from cephalopod.admin.openapi import document


def api_routes(app: Flask) -> dict[str, set[str]]:
    """Map each /api path of the app (OpenAPI style) to its methods."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") and rule.rule != "/api":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        methods = {m.lower() for m in rule.methods or ()} - {"head"}
        if "options" in methods and rule.provide_automatic_options is not False:
            methods.discard("options")  # answered by Flask itself
        routes.setdefault(path, set()).update(methods)
    return routes


def test_every_api_route_is_documented(app, client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"] == "3.1.0"
    assert spec == document()
    documented = {
        path: {m for m in item if m in {"get", "post", "put", "patch", "delete", "options"}}
        for path, item in spec["paths"].items()
    }
    routes = api_routes(app)
    assert routes, "no /api routes found"
    for path, methods in routes.items():
        assert path in documented, f"{path} is not documented"
        assert methods <= documented[path], (path, methods - documented[path])
    for path in documented:
        if path.startswith("/api/"):
            assert path in routes, f"{path} is documented but does not exist"


def test_references_resolve_and_operations_are_unique():
    spec = document()
    text = repr(spec)
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in spec["components"]["schemas"], name
    ids = [
        operation["operationId"]
        for item in spec["paths"].values()
        for key, operation in item.items()
        if key != "parameters"
    ]
    assert len(ids) == len(set(ids))
    admin = [op for path, item in spec["paths"].items() if path.startswith("/api/admin")
             for key, op in item.items() if key != "parameters"]  # fmt: skip
    assert all("401" in op["responses"] and op["security"] for op in admin)
