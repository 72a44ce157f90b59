"""Hand-computed cases shared by the reference (aggregate) and the SQL (queries) tests."""

GROUP_ROWS = [
    ("France", {"v": 2, "os": "linux", "cores": [2, 2]}),
    ("France", {"v": 4, "os": "bsd", "cores": 4}),
    ("Italy", {"v": 1.5, "os": "linux", "cores": "4"}),
    ("Italy", {"v": "7", "os": "linux"}),  # not a number: skipped
    ("Spain", {"v": True, "os": "bsd"}),  # not a number: Spain has no group
    (None, {"v": [10, 20], "os": None}),  # a number only with an aggregation
    ("", {"v": 1, "cores": True}),  # unknown country, unknown os
    ("Germany", None),  # never crawled
    ("Chile", {"v": None, "os": "linux"}),
]

#: (chart_aggregation, the field's aggregation, chart_aggregate_by, expected points)
AGGREGATED_CASES = [
    ("sum", None, "country", [("France", 6), ("Italy", 1.5), ("Unknown", 1)]),
    ("avg", None, "country", [("France", 3.0), ("Italy", 1.5), ("Unknown", 1.0)]),
    ("min", None, "country", [("France", 2), ("Italy", 1.5), ("Unknown", 1)]),
    ("max", None, "country", [("France", 4), ("Italy", 1.5), ("Unknown", 1)]),
    ("sum", "sum", "country", [("Unknown", 31), ("France", 6), ("Italy", 1.5)]),
    ("avg", "sum", "country", [("Unknown", 15.5), ("France", 3.0), ("Italy", 1.5)]),
    ("min", "sum", "country", [("France", 2), ("Italy", 1.5), ("Unknown", 1)]),
    ("max", "sum", "country", [("Unknown", 30), ("France", 4), ("Italy", 1.5)]),
    ("sum", None, "os", [("bsd", 4), ("linux", 3.5), ("Unknown", 1)]),
    ("avg", None, "os", [("bsd", 4.0), ("linux", 1.75), ("Unknown", 1.0)]),
    ("min", None, "os", [("bsd", 4), ("linux", 1.5), ("Unknown", 1)]),
    ("max", None, "os", [("bsd", 4), ("linux", 2), ("Unknown", 1)]),
    ("sum", "sum", "os", [("Unknown", 31), ("bsd", 4), ("linux", 3.5)]),
    # grouped by a field that has its own aggregation: [2, 2] and 4 are one category
    ("sum", None, "cores", [(4, 6), ("4", 1.5), (True, 1)]),
    ("avg", "min", "cores", [("Unknown", 10.0), (4, 3.0), ("4", 1.5), (True, 1.0)]),
]
