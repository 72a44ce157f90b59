"""The neutral parameter parsers: typed queries, or a ParameterError naming the parameter."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from cephalopod import params
from cephalopod.instances.queries import ListQuery
from cephalopod.stats.fields import parse_field_settings

REGISTRY = parse_field_settings({"version": {"chart": True}, "secret": None})


@pytest.mark.parametrize(
    ("query", "name", "message"),
    [
        ("nope=1", "nope", "unknown parameter"),
        ("page=1&page=2", "page", "given more than once"),
        ("page=0", "page", "must be between 1 and 999999999"),
        ("per_page=x", "per_page", "must be a whole number"),
        ("country=DEU", "country", "must be a two-letter ISO 3166 country code"),
        ("duplicates=yes", "duplicates", "must be 1 or 0"),
        ("sort=field:secret", "sort", "no visible crawled field is named 'secret'"),
        ("sort=size", "sort", "must be one of organization, url, contact, email, registered, "
         "last_crawl, country or field:<name>"),
        ("order=up", "order", "must be one of asc, desc"),
        ("q=" + "x" * 201, "q", "must be at most 200 characters"),
    ],
)  # fmt: skip
def test_list_query_names_the_wrong_parameter(query, name, message):
    with pytest.raises(params.ParameterError) as caught:
        params.list_query(MultiDict(_pairs(query)), REGISTRY)
    assert (caught.value.name, caught.value.message) == (name, message)
    assert str(caught.value) == f"Invalid parameter {name}: {message}"


def test_list_query_parses_into_the_typed_query():
    args = MultiDict(_pairs("q= Uni &country=de&duplicates=true&sort=field:version&order=desc"))
    assert params.list_query(args, REGISTRY) == ListQuery(
        q="Uni", country="DE", duplicates=True, sort="field", field="version", order="desc"
    )
    assert params.list_query(MultiDict(), REGISTRY) == ListQuery()


def test_statistics_and_trend_parameters():
    assert params.statistics_status(MultiDict()) == "enabled"
    with pytest.raises(params.ParameterError, match="status: must be one of all"):
        params.statistics_status(MultiDict({"status": "some"}))
    query = params.trend_query(MultiDict({"field": "version", "interval": "week"}), REGISTRY)
    assert (query.name, query.spec.label, query.interval, query.status) == (
        "version", "Version", "week", "enabled"
    )  # fmt: skip
    assert params.trend_query(MultiDict({"field": "instances"}), REGISTRY).spec is None
    with pytest.raises(params.ParameterError) as caught:
        params.trend_query(MultiDict(), REGISTRY)
    assert caught.value.name == "field"


def _pairs(query: str) -> list[tuple[str, str]]:
    return [tuple(part.split("=", 1)) for part in query.split("&")]
