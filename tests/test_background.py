"""The embedded runner's shutdown: nothing it was handed runs after `stop`."""

from __future__ import annotations

import time

import pytest
from flask import Flask

from cephalopod.background import ThreadRunner


def _runner(app: Flask, ran: list[int]) -> ThreadRunner:
    return ThreadRunner(app, {"note": lambda _app, n: ran.append(n)})


def test_a_delayed_task_due_after_stop_never_runs(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """A mail's retry, due minutes later, must not start the thread again on a dying process
    (its app's engine disposed by then: the connection it opened would never be closed)."""
    ran: list[int] = []
    runner = _runner(app, ran)
    runner.submit_later(0.3, "note", n=1)
    with caplog.at_level("INFO"):
        assert runner.stop()
    time.sleep(0.6)  # past the delay: the timer was cancelled, not merely not fired yet
    assert ran == []
    assert runner.dropped == [{"n": 1}]
    assert "Not started, the process stops: <lambda> {'n': 1}" in caplog.text


def test_work_submitted_after_stop_is_dropped(app: Flask) -> None:
    ran: list[int] = []
    runner = _runner(app, ran)
    runner.submit("note", n=1)
    assert runner.join(10)
    assert runner.stop(grace=10)
    runner.submit("note", n=2)
    runner.submit_later(0.0, "note", n=3)
    time.sleep(0.2)
    assert ran == [1]
    assert runner.dropped == [{"n": 2}, {"n": 3}]


def test_a_delayed_task_runs_when_due(app: Flask) -> None:
    ran: list[int] = []
    runner = _runner(app, ran)
    runner.submit_later(0.1, "note", n=1)
    deadline = time.monotonic() + 10
    while not ran and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ran == [1]
    assert runner.stop(grace=10)
    assert runner.dropped == []
