"""The playground's storyboard: a frame added between the two, with its time, in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from segue.media.images import fit_to
from segue.media.video import psnr, read_frames
from tests.conftest import TASKS, LiveServer, make_settings, png_bytes, scene, start_server
from tests.web.test_playground import CHROMIUM, drop, own_playground

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(make_settings(tmp_path_factory.mktemp("web-keyframes")))
    yield server
    server.stop()


@pytest.fixture
def page(live: LiveServer) -> Iterator[Any]:
    with own_playground(live.url) as opened:
        yield opened


def test_a_frame_added_between_lands_on_its_time(page: Any, live: LiveServer,
                                                 tmp_path: Path) -> None:
    first, middle, last = (scene(640, 360, shift=12 * k, seed=k) for k in range(3))
    drop(page, "#first-drop", png_bytes(first), "first.png")
    drop(page, "#last-drop", png_bytes(last), "last.png")
    page.wait_for_selector("#first-drop.filled")
    page.wait_for_selector("#last-drop.filled")
    page.select_option("#model", "segue-flow")
    page.fill("#prompt", "a slow pan --rs 480p")
    page.fill("#duration", "2")

    page.click("#add-keyframe")
    row = page.locator("#keyframe-list .keyframe").first
    row.locator("input[type=file]").set_input_files(
        files=[{"name": "middle.png", "mimeType": "image/png", "buffer": png_bytes(middle)}])
    page.wait_for_selector("#keyframe-list .keyframe img:not([hidden])")
    row.locator("input[type=number]").fill("0.75")
    # a second row, left empty then removed, sends nothing
    page.click("#add-keyframe")
    page.locator("#keyframe-list .keyframe").nth(1).locator("button").click()
    assert page.locator("#keyframe-list .keyframe").count() == 1
    page.click("#submit")

    page.wait_for_selector("#status-text.state-succeeded", timeout=60_000)
    task_id = page.text_content("#task-id")
    with live.client() as c:
        task = c.get(f"{TASKS}/{task_id}").json()
    assert task["keyframes"] == [{"time": 0.75, "frame": 18, "image_url": None}]
    video_path = tmp_path / "story.mp4"
    video_path.write_bytes(httpx.get(task["content"]["video_url"]).content)
    video = read_frames(video_path)
    expected = [fit_to(Image.fromarray(im), 864, 480) for im in (first, middle, last)]
    ends = min(psnr(video[0], expected[0]), psnr(video[-1], expected[2]))
    assert psnr(video[18], expected[1]) >= ends - 1.0

    curl = page.text_content("#curl-snippet")
    python = page.text_content("#python-snippet")
    assert "KEYFRAME1=\"data:image/png;base64,$(base64 -w0 'middle.png')\"" in curl
    assert '"role": "keyframe"' in curl and '"time": 0.75' in curl
    assert 'data_url("middle.png", "image/png")' in python
