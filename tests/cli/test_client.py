"""``segue.Client``: the Pixazo-style helper against a live server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from PIL import Image

import segue
from segue.client import APIError, TaskFailed, image_reference
from tests.conftest import KEY, LiveServer, data_url, make_settings, scene, start_server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(make_settings(tmp_path_factory.mktemp("client")))
    yield server
    server.stop()


@pytest.fixture
def client(live: LiveServer) -> Iterator[segue.Client]:
    with segue.Client(live.url, KEY, poll_interval=0.1) as c:
        yield c


def test_frame_to_video_sends_local_files_and_reports_progress(
    client: segue.Client, tmp_path: Path
) -> None:
    first, last = tmp_path / "a.webp", tmp_path / "b.png"
    Image.fromarray(scene(640, 360)).save(first, lossless=True)
    Image.fromarray(scene(640, 360, shift=20)).save(last)
    seen: list[dict] = []
    task = client.frame_to_video(first, str(last), "a pan --rs 480p", model="segue-blend",
                                 duration=3, seed=11, return_last_frame=True,
                                 progress=seen.append)
    assert task["status"] == "succeeded" and task["seed"] == 11 and task["duration"] == 3
    assert seen[-1] == task and all(0 <= t.get("progress", 100) <= 100 for t in seen)
    video = client.download(task["content"]["video_url"], tmp_path / "v.mp4")
    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 73
    assert client.get(task["id"]) == client.result(task["id"])
    assert image_reference(first).startswith("data:image/webp;base64,")


def test_ark_create_list_and_delete(client: segue.Client) -> None:
    image = data_url(scene(640, 360))
    task_id = client.create(image, prompt="--rs 480p", model="segue-blend", duration=2)
    task = client.wait(task_id, timeout=60)
    assert task["duration"] == 2 and task["resolution"] == "480p"
    listed = client.list_tasks(status="succeeded", page_size=50)
    assert task_id in [t["id"] for t in listed["items"]]
    client.delete(task_id)
    with pytest.raises(APIError) as caught:
        client.get(task_id)
    assert caught.value.status == 404 and caught.value.code == "ResourceNotFound"
    assert "segue-blend" in [m["id"] for m in client.models()]


def test_errors_carry_the_api_message(client: segue.Client, live: LiveServer) -> None:
    image = data_url(scene(640, 360))
    with pytest.raises(APIError) as caught:  # the gateway's duration range starts at 3
        client.frame_to_video(image, image, "x", model="segue-blend", duration=2)
    assert caught.value.code == "InvalidParameter"
    assert "must be between 3 and 12, got 2" in str(caught.value)
    assert "Request id:" in str(caught.value)

    with pytest.raises(TaskFailed) as failed:  # found only by the worker: nothing listens
        client.frame_to_video("http://127.0.0.1:9/a.png", image, "x", model="segue-blend",
                              duration=3)
    assert failed.value.task["status"] == "failed"
    assert failed.value.code.startswith("InvalidImageURL")

    with pytest.raises(FileNotFoundError):
        image_reference("no/such/file.png")
    with segue.Client(live.url, "wrong") as stranger, pytest.raises(APIError) as denied:
        stranger.models()
    assert denied.value.status == 401
