"""Every storyboard rule is a 400 in the surface's own envelope, answered at create."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from segue.domain import keyframe_index
from tests.conftest import LiveServer, data_url, make_settings, scene, start_server

TASKS = "/api/v3/contents/generations/tasks"
FIRST, KEY_IMAGE, LAST = (data_url(scene(320, 320, shift=s)) for s in (0, 8, 16))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No workers: every answer here is the create's."""
    server = start_server(make_settings(tmp_path_factory.mktemp("rules") / "data"), workers=0)
    yield server
    server.stop()


def image(url: str, role: str, **extra: object) -> dict:
    return {"type": "image_url", "image_url": {"url": url}, "role": role, **extra}


def ark(times: list[object], model: str = "segue-flow", ends: tuple[str, ...] = (
        "first_frame", "last_frame"), duration: int = 2) -> dict:
    content = [{"type": "text", "text": "a storyboard"}]
    content += [image(FIRST if role == "first_frame" else LAST, role) for role in ends]
    content += [image(KEY_IMAGE, "keyframe", time=t) for t in times]
    return {"model": model, "content": content, "duration": duration}


def ark_error(live: LiveServer, body: dict | str) -> dict:
    with live.client() as c:
        if isinstance(body, str):
            response = c.post(TASKS, content=body, headers={"Content-Type": "application/json"})
        else:
            response = c.post(TASKS, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "param", "type"}
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(("times", "said"), [
    ([2.5], "less than 2 s (the video's length), got 2.5"),
    ([0], "more than 0"),
    ([-1], "more than 0"),
    ([1.0, 1.01], "lands on frame 24 (round(time × 24)), where the keyframe at 1 s is"),
    ([1.99], "lands on frame 48 (round(time × 24)), where the last frame is"),
    ([0.01], "lands on frame 0 (round(time × 24)), where the first frame is"),
])
def test_times_out_of_range_or_on_a_taken_frame(live: LiveServer, times: list[object],
                                                said: str) -> None:
    error = ark_error(live, ark(times))
    assert error["code"] == "InvalidParameter" and error["param"] == "content.time"
    assert said in error["message"]


def test_more_keyframes_than_the_model_takes_says_how_many(live: LiveServer) -> None:
    error = ark_error(live, ark([0.1 * (i + 1) for i in range(17)]))
    assert error["param"] == "content"
    assert "model segue-flow takes at most 16 keyframes between the ends, got 17" in (
        error["message"])


def test_an_engine_that_cannot_is_named(live: LiveServer) -> None:
    error = ark_error(live, ark([1.0], model="segue-blend"))
    assert error["code"] == "InvalidParameter" and error["param"] == "content"
    assert "served here by the blend engine, which cannot place keyframes" in error["message"]


def test_a_model_without_first_and_last_frame_mode(live: LiveServer) -> None:
    error = ark_error(live, ark([1.0], model="seedance-1-0-pro-fast-251015"))
    assert error["param"] == "content"
    assert "has no first-and-last-frame mode, which keyframes need" in error["message"]


def test_keyframes_need_both_ends(live: LiveServer) -> None:
    error = ark_error(live, ark([1.0], ends=("first_frame",)))
    assert "keyframes go between a first frame and a last frame" in error["message"]


def test_a_keyframe_needs_its_time_and_only_keyframes_take_one(live: LiveServer) -> None:
    body = ark([1.0])
    del body["content"][3]["time"]
    error = ark_error(live, body)
    assert (error["code"], error["param"]) == ("MissingParameter", "content[3].time")
    body = ark([1.0])
    body["content"][1]["time"] = 0
    error = ark_error(live, body)
    assert (error["code"], error["param"]) == ("InvalidParameter", "content[1].time")


@pytest.mark.parametrize("time", ["NaN", "Infinity", '"soon"', "null"])
def test_a_time_that_is_not_a_number(live: LiveServer, time: str) -> None:
    body = json.dumps(ark([1.0])).replace('"time": 1.0', f'"time": {time}')
    error = ark_error(live, body)
    assert error["code"] in ("InvalidParameter", "MissingParameter")
    assert "time" in error["param"]


def test_pixazo_envelope(live: LiveServer) -> None:
    body = {"model": "segue-flow", "text": "a storyboard", "duration": 3,
            "first_frame": FIRST, "last_frame": LAST,
            "keyframes": [{"image": KEY_IMAGE, "time": 3.0}]}
    with live.client(pixazo=True) as c:
        response = c.post("/byteplus/v1/generateFrame2VideoTask", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "InvalidParameter"
        assert "less than 3 s (the video's length), got 3.0" in response.json()["error"]
        body.update(model="segue-blend", keyframes=[{"image": KEY_IMAGE, "time": 1}])
        response = c.post("/byteplus/v1/generateFrame2VideoTask", json=body)
        assert response.status_code == 400, response.text
        assert "blend engine, which cannot place keyframes" in response.json()["error"]


def test_openai_envelope(live: LiveServer) -> None:
    frames = [{"type": "image_url", "image_url": FIRST, "frame_type": "first_frame"},
              {"type": "image_url", "image_url": LAST, "frame_type": "last_frame"},
              {"type": "image_url", "image_url": KEY_IMAGE, "frame_type": "keyframe",
               "time": 1.0},
              {"type": "image_url", "image_url": KEY_IMAGE, "frame_type": "keyframe",
               "time": 1.02}]
    body = {"prompt": "a storyboard", "model": "segue-flow", "seconds": "2",
            "frame_images": frames}
    with live.client() as c:
        response = c.post("/v1/videos", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("InvalidParameter", "frame_images.time")
        assert "where the keyframe at 1 s is already" in error["message"]
        frames[3]["frame_type"] = "last_frame"
        response = c.post("/v1/videos", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "frame_images[3].time"


def test_models_say_how_many_keyframes_each_takes(live: LiveServer) -> None:
    with live.client() as c:
        models = {m["id"]: m for m in c.get("/api/v3/models").json()["data"]}
    assert models["segue-flow"]["max_keyframes"] == 16
    assert models["seedance-1-0-lite-i2v-250428"]["max_keyframes"] == 16
    assert models["segue-blend"]["max_keyframes"] == 0  # the engine cannot
    assert models["seedance-1-0-pro-fast-251015"]["max_keyframes"] == 0  # no first+last mode


def test_a_keyframe_lands_on_round_time_times_fps() -> None:
    assert [keyframe_index(t) for t in (0.5, 1.0, 1.02, 1.0208, 1.0209, 2.5)] == [
        12, 24, 24, 24, 25, 60]


def test_a_storyboard_is_stored_and_shown(live: LiveServer, tmp_path: Path) -> None:
    url = "https://images.example/mid.png"
    body = ark([0.75])
    body["content"][3]["image_url"]["url"] = url
    with live.client() as c:
        response = c.post(TASKS, json=body)
        assert response.status_code == 200, response.text
        task = c.get(f"{TASKS}/{response.json()['id']}").json()
    assert task["keyframes"] == [{"time": 0.75, "frame": 18, "image_url": url}]
    stored = live.services.tasks.full_request(live.services.tasks.get(task["id"]))
    assert {"url": url, "role": "keyframe", "time": 0.75} in stored["images"]


def test_an_unusable_keyframe_image_is_named_with_its_time(live: LiveServer) -> None:
    body = ark([1.5])
    body["content"][3]["image_url"]["url"] = data_url(scene(200, 200))  # sides of 300+ only
    error = ark_error(live, body)
    assert error["param"] == "keyframe@1.5s"
    assert "`keyframe@1.5s`" in error["message"] and "it is 200 (200x200)" in error["message"]
