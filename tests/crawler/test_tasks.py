"""Celery's split of a crawl into chunks: the instances slow last time gathered first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from cephalopod.crawler import run
from cephalopod.crawler.run import slow_ids
from cephalopod.crawler.tasks import plan_chunks
from cephalopod.db import db


@pytest.mark.parametrize(
    ("slow", "enabled", "size", "chunks"),
    [
        ([], [1, 2, 3, 4, 5], 2, [[1, 2], [3, 4], [5]]),
        ([4, 2], [1, 2, 3, 4, 5], 2, [[4, 2], [1, 3], [5]]),
        ([5, 1, 3], [1, 2, 3, 4, 5, 6], 2, [[5, 1], [3, 2], [4, 6]]),
        ([3, 3], [1, 2, 3], 5, [[3, 1, 2]]),  # each id once
        ([], [], 3, []),
    ],
)
def test_plan_chunks_puts_the_slow_first_and_every_instance_once(
    slow: list[int], enabled: list[int], size: int, chunks: list[list[int]]
) -> None:
    assert plan_chunks(slow, iter(enabled), size) == chunks


def test_slow_ids_are_the_enabled_slow_ones_slowest_first(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    limit = run.SLOW_FIRST_SECONDS
    made = [
        make_instance(last_crawl_seconds=limit + 1),
        make_instance(last_crawl_seconds=limit - 0.1),
        make_instance(last_crawl_seconds=None),
        make_instance(last_crawl_seconds=limit + 10),
        make_instance(last_crawl_seconds=limit + 20, enabled=False),
        make_instance(last_crawl_seconds=limit),
    ]
    with app.app_context():
        assert slow_ids(db.session.connection()) == [made[3].id, made[0].id, made[5].id]
