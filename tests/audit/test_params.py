"""The audit log's date-time parameters: RFC 3339 with an offset, as the document says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from werkzeug.datastructures import MultiDict

from cephalopod.params import EARLIEST, LATEST, ParameterError, date_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01T12:00:00Z", datetime(2026, 6, 1, 12, tzinfo=UTC)),
        ("2026-06-01t12:00:00z", datetime(2026, 6, 1, 12, tzinfo=UTC)),
        ("2026-06-01T14:00:00+02:00", datetime(2026, 6, 1, 12, tzinfo=UTC)),
        ("2026-06-01T11:30:00-00:30", datetime(2026, 6, 1, 12, tzinfo=UTC)),
        ("2026-06-01T12:00:00.25Z", datetime(2026, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2026-06-01T12:00:00.1234567Z", datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=UTC)),  # a leap second
        ("0001-01-01T00:00:00+23:59", EARLIEST),  # before the first representable moment
        ("9999-12-31T23:59:59-23:59", LATEST),
        ("0000-01-01T00:00:00Z", EARLIEST),
        ("", None),
    ],
)
def test_accepted(text: str, expected: datetime | None) -> None:
    assert date_time(MultiDict({"since": text}), "since") == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-06-01",
        "2026-06-01T12:00:00",
        "2026-06-01 12:00:00Z",
        "20260601T120000Z",
        "2026-06-01T12:00Z",
        "2026-13-01T12:00:00Z",
        "2026-02-29T12:00:00Z",
        "2026-06-01T24:00:00Z",
        "2026-06-01T12:60:00Z",
        "2026-06-01T12:00:61Z",
        "2026-06-01T12:00:00+24:00",
        "2026-06-01T12:00:00+01:60",
        "٢٠٢٦-06-01T12:00:00Z",  # other scripts' digits
        "now",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(ParameterError) as caught:
        date_time(MultiDict({"until": text}), "until")
    assert caught.value.name == "until"
