"""The playground page, driven end to end in Debian's Chromium against a live server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import KEY, LiveServer, data_url, make_settings, png_bytes, scene, start_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TASKS = "/api/v3/contents/generations/tasks"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(make_settings(tmp_path_factory.mktemp("web")))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield instance
        instance.close()


@contextmanager
def playground(browser: Any, url: str) -> Iterator[Any]:
    """The playground at ``url``, signed in with the test key, its model menu loaded; no
    JavaScript error may happen on it meanwhile."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/")
    page.fill("#api-key", KEY)
    page.dispatch_event("#api-key", "change")
    page.wait_for_selector("#model option[value='segue-blend']", state="attached")
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@contextmanager
def own_playground(url: str) -> Iterator[Any]:
    """``playground`` in a browser of its own, closed after (for a module without one)."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        with playground(browser, url) as opened:
            yield opened
        browser.close()


@pytest.fixture
def page(browser: Any, live: LiveServer) -> Iterator[Any]:
    with playground(browser, live.url) as opened:
        yield opened


def drop(page: Any, selector: str, png: bytes, name: str) -> None:
    """Drop a file on an element the way a desktop drag does (a DataTransfer with a File)."""
    transfer = page.evaluate_handle(
        """([b64, name]) => {
            const bin = atob(b64);
            const bytes = new Uint8Array(bin.length);
            for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: "image/png" }));
            return dt;
        }""",
        [base64.b64encode(png).decode(), name],
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def fill_pair(page: Any) -> None:
    drop(page, "#first-drop", png_bytes(scene(640, 360)), "first.png")
    drop(page, "#last-drop", png_bytes(scene(640, 360, shift=40, seed=1)), "last.png")
    page.wait_for_selector("#last-drop.filled")
    page.wait_for_selector("#first-drop.filled")
    page.select_option("#model", "segue-blend")


def test_drop_submit_and_watch_the_video(page: Any, live: LiveServer) -> None:
    streams: list[str] = []
    page.on("response", lambda r: streams.append(r.headers.get("content-type", ""))
            if r.url.endswith("/events") else None)
    # each model once: the Volcengine spellings that /api/v3/models also lists are not offered
    assert page.locator("#model option[value='dreamina-seedance-2-0-260128']").count() == 1
    assert page.locator("#model option[value^='doubao-']").count() == 0
    fill_pair(page)
    # the resolution is left alone, so the prompt's --rs applies; the duration is changed
    # on the page, so it wins over the prompt's --dur
    page.fill("#prompt", "a slow pan --rs 480p --dur 3")
    page.fill("#duration", "2")
    page.check("#return_last_frame")
    page.click("#submit")

    page.wait_for_selector("#status-text.state-succeeded", timeout=30_000)
    page.wait_for_function("document.getElementById('video').readyState >= 2", timeout=15_000)
    duration = page.eval_on_selector("#video", "v => v.duration")
    assert duration == pytest.approx(2.0, abs=0.1)
    assert streams and streams[0].startswith("text/event-stream")  # followed by SSE

    task_id = page.text_content("#task-id")
    with live.client() as c:
        task = c.get(f"{TASKS}/{task_id}").json()
    assert (task["status"], task["resolution"], task["duration"]) == ("succeeded", "480p", 2)
    assert page.get_attribute("#download-video", "href") == task["content"]["video_url"]
    assert page.get_attribute("#download-last", "href") == task["content"]["last_frame_url"]
    assert httpx.get(task["content"]["last_frame_url"]).headers["content-type"] == "image/png"
    assert page.is_visible("#out-first") and page.is_visible("#out-last")

    # the scrubber seeks the video frame by frame
    page.eval_on_selector("#scrubber", "s => { s.value = '24'; s.dispatchEvent(new Event("
                                       "'input')); }")
    assert page.text_content("#frame-no") == "25 / 49"
    assert page.eval_on_selector("#video", "v => v.currentTime") == pytest.approx(24.5 / 24)

    curl = page.text_content("#curl-snippet")
    python = page.text_content("#python-snippet")
    assert '"duration": 2' in curl and "base64 -w0 'first.png'" in curl
    assert "--rs 480p" in curl and '"resolution"' not in curl
    assert "tasks.create(" in python and "return_last_frame=True" in python
    assert 'data_url("last.png", "image/png")' in python

    page.wait_for_selector(f"#history-table tr[data-task-id='{task_id}']")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page_width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(ARTIFACTS / "playground-phone.png"), full_page=True)
    assert page_width <= 390, "the page scrolls sideways at phone width"


def test_falls_back_to_polling_without_the_event_stream(page: Any) -> None:
    page.route("**/events", lambda route: route.fulfill(status=404, body="Not Found"))
    polled: list[str] = []
    page.on("request", lambda r: polled.append(r.url) if "/tasks/cgt-" in r.url else None)
    fill_pair(page)
    page.fill("#prompt", "--rs 480p --dur 2")
    page.click("#submit")
    page.wait_for_selector("#status-text.state-succeeded", timeout=30_000)
    assert any(not url.endswith("/events") for url in polled)


def test_invalid_input_shows_the_api_message(page: Any) -> None:
    fill_pair(page)
    page.fill("#duration", "20")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    message = page.text_content("#error")
    assert "The parameter `duration` specified in the request is not valid" in message
    assert "must be between 2 and 12, got 20" in message and "Request id:" in message


def _create(live: LiveServer, text: str) -> str:
    """A blend task from one first frame, created through the API; its id."""
    body = {"model": "segue-blend", "content": [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": data_url(scene(640, 360))},
         "role": "first_frame"}]}
    with live.client() as c:
        return str(c.post(TASKS, json=body).json()["id"])


def test_history_filters_and_deletes(page: Any, live: LiveServer) -> None:
    task_id = _create(live, "history --rs 480p --dur 2")
    live.wait(task_id)
    page.click("#refresh")
    row = f"#history-table tr[data-task-id='{task_id}']"
    page.wait_for_selector(row)
    page.select_option("#status-filter", "failed")
    page.wait_for_selector(row, state="detached")
    page.select_option("#status-filter", "succeeded")
    page.wait_for_selector(row)

    page.click(f"{row} button:has-text('Open')")
    page.wait_for_selector("#status-text.state-succeeded")
    assert page.text_content("#task-id") == task_id

    page.click(f"{row} button:has-text('Delete')")
    page.wait_for_selector(row, state="detached")
    with live.client() as c:
        assert c.get(f"{TASKS}/{task_id}").status_code == 404


def test_no_red_errors_before_a_key_is_typed(browser: Any, live: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    answered: list[int] = []
    page.on("response", lambda r: answered.append(r.status) if "/api/v3/" in r.url else None)
    page.goto(live.url + "/")
    page.wait_for_selector("#api-key.wanted")
    page.wait_for_function("document.getElementById('history-total').textContent !== ''")
    assert 401 in answered  # the page did ask, and the server wants a key
    assert page.is_hidden("#error") and page.is_hidden("#history-error")
    assert "API key" in page.text_content("#history-total")
    assert page.eval_on_selector("#api-key", "el => el.classList.contains('wanted')")
    page.fill("#api-key", KEY)
    page.dispatch_event("#api-key", "change")
    page.wait_for_selector("#model option[value='segue-blend']", state="attached")
    assert not page.eval_on_selector("#api-key", "el => el.classList.contains('wanted')")
    context.close()


def test_settings_show_what_the_prompt_commands_apply(page: Any) -> None:
    page.fill("#prompt", "a pan --rs 480p --dur 3 --cf true --rt 1:1")
    assert page.input_value("#resolution") == "480p" and page.input_value("#duration") == "3"
    assert page.input_value("#ratio") == "1:1" and page.is_checked("#camera_fixed")
    assert page.eval_on_selector("[data-setting='duration']",
                                 "el => el.classList.contains('from-prompt')")
    assert not page.eval_on_selector("[data-setting='duration']",
                                     "el => el.classList.contains('changed')")
    page.fill("#duration", "4")  # a change on the page wins, and is kept
    page.fill("#prompt", "a pan --rs 720p --dur 2")
    assert page.input_value("#duration") == "4" and page.input_value("#resolution") == "720p"
    assert not page.is_checked("#camera_fixed") and page.input_value("#ratio") == "adaptive"


def test_history_ids_stay_on_one_line_at_phone_width(page: Any, live: LiveServer) -> None:
    task_id = _create(live, "phone --rs 480p --dur 2")
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#refresh")
    cell = f"#history-table tr[data-task-id='{task_id}'] td.mono"
    # the history re-renders while tasks change: count the lines once the id is laid out
    lines = page.wait_for_function("""sel => {
        const td = document.querySelector(sel);
        if (!td || !td.textContent.trim()) return 0;
        const range = document.createRange();
        range.selectNodeContents(td);
        return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
    }""", arg=cell).json_value()
    assert lines == 1, "the task id wraps at phone width"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    buttons = page.eval_on_selector(f"#history-table tr[data-task-id='{task_id}']",
                                    "tr => [...tr.querySelectorAll('button')].length")
    assert buttons >= 1 and page.is_visible(f"{cell} ~ td button:has-text('Open')")
