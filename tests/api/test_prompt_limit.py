"""A prompt has a length limit (it is stored with its task and echoed in every poll)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from segue.requests import PROMPT_MAX_CHARS
from tests.conftest import (
    TASKS,
    LiveServer,
    ark_task,
    data_url,
    make_settings,
    scene,
    start_server,
)

LONG = "a slow pan " * (PROMPT_MAX_CHARS // 11 + 1)  # just over the limit


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(make_settings(Path(tmp_path_factory.mktemp("prompts")) / "data"),
                          workers=0)
    yield server
    server.stop()


def _frames() -> tuple[str, str]:
    return data_url(scene(640, 360)), data_url(scene(640, 360, 9))


def test_the_limit_on_each_surface(live: LiveServer) -> None:
    first, last = _frames()
    with live.client() as c, live.client(pixazo=True) as p:
        ark = c.post(TASKS, json=ark_task("segue-blend", LONG))
        openai = c.post("/v1/videos", json={"model": "segue-blend", "prompt": LONG,
                                            "input_reference": {"image_url": first}})
        pixazo = p.post("/byteplus/v1/generateFrame2VideoTask", json={
            "model": "segue-blend", "text": LONG, "first_frame": first, "last_frame": last})
        at_limit = c.post(TASKS, json=ark_task("segue-blend", LONG[:PROMPT_MAX_CHARS]))
    for response, param in ((ark, "content.text"), (openai, "prompt")):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
        assert f"the limit is {PROMPT_MAX_CHARS}" in response.json()["error"]["message"]
    assert pixazo.status_code == 400 and "the limit is" in pixazo.json()["error"]
    assert at_limit.status_code == 200, at_limit.text
