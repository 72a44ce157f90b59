import pytest

from cephalopod.stats.fields import (
    AGGREGATIONS,
    CHART_AGGREGATIONS,
    CHART_TYPES,
    FieldSettingsError,
    FieldSpec,
    default_label,
    parse_field_settings,
)

OPTIONS_TEXT = (
    "'label', 'aggregation', 'chart', 'chart_type', 'chart_aggregation', 'chart_aggregate_by'"
)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("python_version", "Python version"),
        ("a", "A"),
        ("os", "Os"),
        ("uSER_ID", "USER ID"),
        ("cpu_Count_2", "Cpu Count 2"),
        ("éclair_size", "Éclair size"),
        ("9_lives", "9 lives"),
        ("_private", " private"),
        ("", ""),
    ],
)
def test_default_label(name, label):
    assert default_label(name) == label


def test_unconfigured_field_gets_defaults():
    registry = parse_field_settings({"other": {"chart": True}})
    assert registry.spec("python_version") == FieldSpec(
        name="python_version",
        label="Python version",
        aggregation=None,
        chart=False,
        chart_type="bar",
        chart_aggregation="count",
        chart_aggregate_by="country",
    )


@pytest.mark.parametrize("raw", [None, {}])
def test_no_settings_means_all_defaults(raw):
    registry = parse_field_settings(raw)
    assert registry.spec("x_y") == FieldSpec("x_y", "X y")
    assert registry.charted() == []
    assert not registry.is_hidden("x_y")


def test_every_option_is_read():
    raw = {
        "cores": {},
        "python_version": {
            "label": "Python",
            "aggregation": "max",
            "chart": True,
            "chart_type": "pie",
            "chart_aggregation": "avg",
            "chart_aggregate_by": "cores",
        },
    }
    assert parse_field_settings(raw).spec("python_version") == FieldSpec(
        "python_version", "Python", "max", True, "pie", "avg", "cores"
    )


@pytest.mark.parametrize(
    ("option", "value"),
    [("aggregation", v) for v in AGGREGATIONS]
    + [("chart_type", v) for v in CHART_TYPES]
    + [("chart_aggregation", v) for v in CHART_AGGREGATIONS]
    + [("chart", True), ("chart", False), ("label", "Any text"), ("chart_aggregate_by", "y")],
)
def test_every_accepted_value_is_kept(option, value):
    spec = parse_field_settings({"x": {option: value}}).spec("x")
    assert getattr(spec, option) == value
    assert type(getattr(spec, option)) is type(value)


def test_hidden_field():
    registry = parse_field_settings({"secret": None, "shown": {"chart": True}})
    assert registry.is_hidden("secret")
    assert not registry.is_hidden("shown")
    assert not registry.is_hidden("unconfigured")
    with pytest.raises(KeyError, match="secret"):
        registry.spec("secret")
    data = {"secret": 1, "shown": [1], "unconfigured": None}
    assert registry.visible(data) == {"shown": [1], "unconfigured": None}
    assert [spec.name for spec in registry.charted()] == ["shown"]


def test_charted_keeps_settings_order_and_skips_the_rest():
    raw = {
        "z": {"chart": True},
        "hidden": None,
        "m": {"chart": False, "chart_type": "pie"},
        "a": {"chart": True, "chart_type": "line"},
        "b": {},
    }
    assert [spec.name for spec in parse_field_settings(raw).charted()] == ["z", "a"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"x": {"chart_type": "donut"}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart_type'] = 'donut' is invalid; "
            "accepted values: 'bar', 'line', 'pie'",
        ),
        (
            {"x": {"chart_type": None}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart_type'] = None is invalid; "
            "accepted values: 'bar', 'line', 'pie'",
        ),
        (
            {"x": {"chart_type": "Bar"}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart_type'] = 'Bar' is invalid; "
            "accepted values: 'bar', 'line', 'pie'",
        ),
        (
            {"x": {"aggregation": "median"}},
            "CRAWLED_FIELDS_SETTINGS['x']['aggregation'] = 'median' is invalid; "
            "accepted values: None, 'sum', 'avg', 'min', 'max'",
        ),
        (
            {"x": {"aggregation": False}},
            "CRAWLED_FIELDS_SETTINGS['x']['aggregation'] = False is invalid; "
            "accepted values: None, 'sum', 'avg', 'min', 'max'",
        ),
        (
            {"x": {"aggregation": "count"}},
            "CRAWLED_FIELDS_SETTINGS['x']['aggregation'] = 'count' is invalid; "
            "accepted values: None, 'sum', 'avg', 'min', 'max'",
        ),
        (
            {"x": {"chart_aggregation": None}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart_aggregation'] = None is invalid; "
            "accepted values: 'count', 'sum', 'avg', 'min', 'max'",
        ),
        (
            {"x": {"chart_aggregation": ["sum"]}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart_aggregation'] = ['sum'] is invalid; "
            "accepted values: 'count', 'sum', 'avg', 'min', 'max'",
        ),
        (
            {"x": {"chart": 1}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart'] = 1 is invalid; accepted values: True, False",
        ),
        (
            {"x": {"chart": "yes"}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart'] = 'yes' is invalid; "
            "accepted values: True, False",
        ),
        (
            {"x": {"label": 3}},
            "CRAWLED_FIELDS_SETTINGS['x']['label'] = 3 is invalid; "
            "accepted values: a non-empty string",
        ),
        (
            {"x": {"label": "  "}},
            "CRAWLED_FIELDS_SETTINGS['x']['label'] = '  ' is invalid; "
            "accepted values: a non-empty string",
        ),
        (
            {"x": {"label": None}},
            "CRAWLED_FIELDS_SETTINGS['x']['label'] = None is invalid; "
            "accepted values: a non-empty string",
        ),
        (
            {"x": {"chart_aggregate_by": "x"}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart_aggregate_by'] = 'x' is invalid; "
            "accepted values: 'country' or the name of another crawled field that is not hidden",
        ),
        (
            {"x": {"chart_aggregate_by": "gone"}, "gone": None},
            "CRAWLED_FIELDS_SETTINGS['x']['chart_aggregate_by'] = 'gone' is invalid; "
            "accepted values: 'country' or the name of another crawled field that is not hidden",
        ),
        (
            {"x": {"chart_aggregate_by": ""}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart_aggregate_by'] = '' is invalid; "
            "accepted values: 'country' or the name of another crawled field that is not hidden",
        ),
        (
            {"x": {"chart_aggregate_by": 2}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart_aggregate_by'] = 2 is invalid; "
            "accepted values: 'country' or the name of another crawled field that is not hidden",
        ),
        (
            {"x": {"chart_typ": "bar"}},
            "CRAWLED_FIELDS_SETTINGS['x']['chart_typ'] is not an option; "
            f"accepted options: {OPTIONS_TEXT}",
        ),
        (
            {"x": "bar"},
            "CRAWLED_FIELDS_SETTINGS['x'] = 'bar' is invalid; accepted values: "
            f"None (to hide the field) or a dict of options {OPTIONS_TEXT}",
        ),
        (
            {"x": False},
            "CRAWLED_FIELDS_SETTINGS['x'] = False is invalid; accepted values: "
            f"None (to hide the field) or a dict of options {OPTIONS_TEXT}",
        ),
        (
            {"x": [("chart", True)]},
            "CRAWLED_FIELDS_SETTINGS['x'] = [('chart', True)] is invalid; accepted values: "
            f"None (to hide the field) or a dict of options {OPTIONS_TEXT}",
        ),
        (
            {3: None},
            "CRAWLED_FIELDS_SETTINGS has the field name 3; accepted field names: non-empty strings",
        ),
        (
            {"": {}},
            "CRAWLED_FIELDS_SETTINGS has the field name ''; "
            "accepted field names: non-empty strings",
        ),
        (
            ["x"],
            "CRAWLED_FIELDS_SETTINGS = ['x'] is invalid; accepted values: "
            "a dict mapping crawled field names to None or a dict of options",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(raw, message):
    with pytest.raises(FieldSettingsError) as caught:
        parse_field_settings(raw)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_error_carries_path_value_and_accepted():
    with pytest.raises(FieldSettingsError) as caught:
        parse_field_settings({"python_version": {"chart": True, "chart_type": "donut"}})
    error = caught.value
    assert error.path == "CRAWLED_FIELDS_SETTINGS['python_version']['chart_type']"
    assert error.value == "donut"
    assert error.accepted == "'bar', 'line', 'pie'"


def fingerprint(raw):
    return parse_field_settings(raw).fingerprint()


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({}, None),
        ({}, {"x": {}}),
        ({}, {"python_version": {"label": "Python version", "chart": False}}),
        ({"a": {"chart": True}}, {"a": {"chart": True}, "b": {"chart_type": "bar"}}),
        ({"a": {"chart": True, "chart_type": "bar"}}, {"a": {"chart_type": "bar", "chart": True}}),
    ],
)
def test_fingerprint_ignores_what_does_not_change_behaviour(left, right):
    assert fingerprint(left) == fingerprint(right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({}, {"x": None}),
        ({}, {"x": {"aggregation": "sum"}}),
        ({"x": {"aggregation": "sum"}}, {"x": {"aggregation": "avg"}}),
        ({}, {"x": {"label": "Other"}}),
        ({}, {"x": {"chart": True}}),
        ({"x": {"chart": True}}, {"x": {"chart": True, "chart_type": "pie"}}),
        ({"x": {"chart": True}}, {"x": {"chart": True, "chart_aggregation": "sum"}}),
        ({"x": {"chart_aggregate_by": "y"}}, {"x": {"chart_aggregate_by": "z"}}),
        ({"x": None}, {"y": None}),
        (
            {"a": {"chart": True}, "b": {"chart": True}},
            {"b": {"chart": True}, "a": {"chart": True}},
        ),
    ],
)
def test_fingerprint_changes_with_behaviour(left, right):
    assert fingerprint(left) != fingerprint(right)


def test_fingerprint_is_a_sha256_hex_digest():
    value = fingerprint({"x": {"chart": True}})
    assert len(value) == 64
    assert set(value) <= set("0123456789abcdef")
