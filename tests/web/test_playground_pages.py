"""The playground with a queue that does not move (no worker): every task of the history can
be reached, and a queued task's frames keep their places around the video's (issue 23,
point 11)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TASKS, LiveServer, ark_task, make_settings, start_server
from tests.web.test_playground import CHROMIUM, fill_pair, own_playground

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]
sync_api = pytest.importorskip("playwright.sync_api")
CREATED = 28


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(make_settings(tmp_path_factory.mktemp("queue")), workers=0)
    with server.client() as client:
        for n in range(CREATED):
            assert client.post(TASKS, json=ark_task("segue-blend", f"t{n}")).status_code == 200
    yield server
    server.stop()


@pytest.fixture
def page(live: LiveServer) -> Iterator[Any]:
    with own_playground(live.url) as opened:
        yield opened


def _rows(page: Any) -> int:
    return int(page.eval_on_selector_all("#history-table tbody tr", "rows => rows.length"))


def test_every_task_of_the_history_can_be_shown(page: Any) -> None:
    page.wait_for_function("document.getElementById('history-total').textContent"
                           f" === '20 of {CREATED} shown'")
    assert _rows(page) == 20
    assert page.text_content("#history-more") == f"Show {CREATED - 20} more"
    page.click("#history-more")
    page.wait_for_function("document.getElementById('history-total').textContent"
                           f" === '{CREATED} of {CREATED} shown'")
    assert _rows(page) == CREATED and page.is_hidden("#history-more")
    page.click("#refresh")  # a refresh keeps the pages that were opened
    page.wait_for_timeout(300)
    assert _rows(page) == CREATED


def test_a_queued_task_shows_no_frame_in_the_videos_place(page: Any) -> None:
    fill_pair(page)
    page.click("#submit")
    page.wait_for_selector("#status-text.state-queued")
    page.wait_for_selector("#out-last", state="visible")
    box = {name: page.eval_on_selector(selector, "e => e.getBoundingClientRect().toJSON()")
           for name, selector in (("first", "#out-first"), ("video", "figure.video"),
                                  ("last", "#out-last"))}
    assert page.is_visible("figure.video")
    assert page.text_content("figure.video figcaption") == "Video: not rendered yet"
    # first, video, last from left to right: the middle place is the video's
    assert box["first"]["right"] <= box["video"]["left"] < box["video"]["right"] \
        <= box["last"]["left"]
    assert box["video"]["width"] > box["last"]["width"]
