"""Bounded fuzzing of ``POST /v1/videos``: JSON and multipart mutations never produce a 500."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_fuzz import VALUES, mutate
from tests.conftest import LiveServer, data_url, make_settings, png_bytes, scene, start_server

FIRST = data_url(scene(320, 320))
LAST = data_url(scene(320, 320, shift=8))
FORM_KEYS = ["prompt", "model", "seconds", "size", "input_reference", "frame_images",
             "frame_images[][frame_type]", "frame_images[][image_url][url]",
             "frame_images[][image_url]", "input_reference[image_url]", "input_references[]",
             "a[b][]", "x[", "seed"]


def body() -> dict:
    return {"prompt": "x", "model": "segue-blend", "seconds": "2", "size": "320x320",
            "input_reference": {"image_url": FIRST},
            "frame_images": [{"type": "image_url", "image_url": {"url": LAST},
                              "frame_type": "last_frame"}]}


@pytest.fixture
def idle(tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(make_settings(tmp_path / "data"), workers=0)
    yield live
    live.stop()


def _check(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code in (200, 400, 404, 413), response.text
    if response.status_code != 200:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert error["code"] and "Request id:" in error["message"]
    return int(response.status_code)


def test_random_bodies_get_openai_envelopes(idle: LiveServer) -> None:
    rng = random.Random(20261130)
    seen: set[int] = set()
    with idle.client() as c:
        for _ in range(150):
            seen.add(_check(c.post("/v1/videos", json=mutate(body(), rng))))
        for _ in range(60):
            fields = [(rng.choice(FORM_KEYS), str(rng.choice(VALUES + [FIRST, "[{}]", "{"])))
                      for _ in range(rng.randint(1, 6))]
            files = {"input_reference": ("f.png", png_bytes(scene(320, 320)) if rng.random()
                                         < 0.5 else b"\x89PNG broken", "image/png")}
            seen.add(_check(c.post("/v1/videos", data=dict(fields), files=files)))
    assert 400 in seen and 200 in seen
    with idle.client() as c:  # every accepted video is stored and readable
        listed = c.get("/v1/videos", params={"limit": 100}).json()
        for video in listed["data"]:
            assert c.get(f"/v1/videos/{video['id']}").json()["status"] == "queued"
