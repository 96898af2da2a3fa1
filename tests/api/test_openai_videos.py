"""``/v1/videos`` with the official ``openai`` client, unmodified, against a live server."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from segue.engines.blend import BlendEngine
from segue.media.images import fit_to
from segue.media.video import probe, psnr, read_frames
from tests.conftest import (
    KEY,
    OTHER_KEY,
    LiveServer,
    ark_task,
    data_url,
    make_settings,
    png_bytes,
    scene,
    start_server,
)
from tests.lifecycle.support import use_engine

MODEL = "segue-blend"


def client(server: LiveServer, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)


def wait_done(c: openai.OpenAI, video_id: str, timeout: float = 90) -> openai.types.Video:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = c.videos.retrieve(video_id)
        if video.status in ("completed", "failed"):
            return video
        time.sleep(0.1)
    raise AssertionError(f"video {video_id} did not finish in {timeout} s")


def queue(c: openai.OpenAI, prompt: str) -> openai.types.Video:
    """A first-frame video of 8 s (no workers render it in these tests)."""
    return c.videos.create(prompt=prompt, model=MODEL, seconds="8",
                           input_reference=("f.png", png_bytes(scene(640, 360)), "image/png"))


@pytest.fixture
def queue_only(tmp_path: Path) -> Iterator[LiveServer]:
    """A server without workers: videos stay queued."""
    live = start_server(make_settings(tmp_path / "data"), workers=0)
    yield live
    live.stop()


def test_first_and_last_frame_video_made_and_downloaded(server: LiveServer,
                                                        tmp_path: Path) -> None:
    first, last = scene(640, 360), scene(640, 360, shift=40, seed=3)
    c = client(server)
    video = c.videos.create(
        prompt="a slow pan", model=MODEL, seconds="4", size="320x180",
        input_reference=("first.png", png_bytes(first), "image/png"),
        extra_body={"frame_images": [{"type": "image_url", "image_url": {"url": data_url(last)},
                                      "frame_type": "last_frame"}]},
    )
    assert (video.object, video.status, video.model) == ("video", "queued", MODEL)
    assert (video.seconds, video.size, video.prompt) == ("4", "320x180", "a slow pan")

    done = wait_done(c, video.id)
    assert done.status == "completed", done.error
    assert done.progress == 100 and done.completed_at and done.expires_at > time.time()

    path = tmp_path / "out.mp4"
    c.videos.download_content(video.id).write_to_file(path)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.frames) == (320, 180, 24.0, 4 * 24 + 1)
    frames = read_frames(path)
    assert psnr(frames[0], fit_to(Image.fromarray(first), 320, 180)) > 30
    assert psnr(frames[-1], fit_to(Image.fromarray(last), 320, 180)) > 30

    thumb = c.videos.download_content(video.id, variant="thumbnail")
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert (image.format, image.size) == ("WEBP", (320, 180))
        assert psnr(np.asarray(image.convert("RGB")), frames[0]) > 30
    sheet = c.videos.download_content(video.id, variant="spritesheet")
    with Image.open(io.BytesIO(sheet.content)) as image:
        assert (image.format, image.size) == ("JPEG", (5 * 256, 5 * 144))  # 25 tiles of 256 px

    # one store: the Ark surface reads the same task
    with server.client() as ark:
        task = ark.get(f"/api/v3/contents/generations/tasks/{video.id}").json()
    assert task["status"] == "succeeded" and task["duration"] == 4

    gone = c.videos.delete(video.id)
    assert (gone.id, gone.object, gone.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        c.videos.retrieve(video.id)


def test_list_pages_with_after_and_videos_of_other_surfaces(queue_only: LiveServer) -> None:
    c = client(queue_only)
    made = [queue(c, f"scene {i}").id for i in range(3)]
    with queue_only.client() as ark:  # a task made on the Ark surface
        made.append(ark.post("/api/v3/contents/generations/tasks",
                             json=ark_task("segue-blend", "ark made")).json()["id"])
    page = c.videos.list(limit=3)
    assert [v.id for v in page.data] == made[::-1][:3]
    assert page.has_more and page.last_id == made[1]
    rest = c.videos.list(limit=3, after=page.last_id)
    assert [v.id for v in rest.data] == [made[0]] and not rest.has_more
    oldest_first = c.videos.list(order="asc", limit=10)
    assert [v.id for v in oldest_first.data] == made
    ark_made = c.videos.retrieve(made[3])
    assert ark_made.seconds == "5" and ark_made.prompt == "ark made" and ark_made.size == "auto"
    assert [v.id for v in c.videos.list(limit=2, after=made[2], order="asc")] == [made[3]]

    # another key sees none of them
    other = client(queue_only, OTHER_KEY)
    with pytest.raises(openai.NotFoundError) as err:
        other.videos.retrieve(made[0])
    assert err.value.body["code"] == "ResourceNotFound"
    assert other.videos.list().data == []

    # one idempotency path: a retried multipart create (a new boundary) gets the same video
    again = [c.videos.create(prompt="once", model=MODEL, input_reference=(
        "f.png", png_bytes(scene(640, 360)), "image/png"),
        extra_headers={"Idempotency-Key": "abc"}).id for _ in range(2)]
    assert again[0] == again[1]
    with pytest.raises(openai.BadRequestError) as err:
        c.videos.create(prompt="twice", model=MODEL, extra_headers={"Idempotency-Key": "abc"},
                        input_reference=("f.png", png_bytes(scene(640, 360)), "image/png"))
    assert err.value.body["param"] == "Idempotency-Key"

    # deleting a queued video cancels it
    cancelled = c.videos.delete(made[0])
    assert not cancelled.deleted
    shown = c.videos.retrieve(made[0])
    assert shown.status == "failed" and shown.error.code == "TaskCancelled"


def test_errors_come_in_the_openai_envelope(queue_only: LiveServer) -> None:
    c = client(queue_only)
    for size, detail in (("321x180", "even"), ("64x64", "between"), ("4096x2160", "between"),
                         ("big", "WIDTHxHEIGHT")):
        with pytest.raises(openai.BadRequestError) as err:
            c.videos.create(prompt="p", model=MODEL, size=size)
        body = err.value.body
        assert (body["param"], body["code"], body["type"]) == (
            "size", "InvalidParameter", "invalid_request_error"), body
        assert detail in body["message"] and "Request id:" in body["message"]
    blocky = BlendEngine()
    blocky.size_multiple = 16  # type: ignore[attr-defined]  # as a diffusion engine declares
    use_engine(queue_only, blocky)
    with pytest.raises(openai.BadRequestError) as err:
        c.videos.create(prompt="p", model=MODEL, size="648x360")
    assert err.value.body["param"] == "size" and "multiples of 16" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        c.videos.create(prompt="p", model=MODEL, seconds="13")
    assert err.value.body["param"] == "seconds" and "2 to 12" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:  # a last frame alone
        c.videos.create(prompt="p", model=MODEL, extra_body={"frame_images": [
            {"image_url": {"url": data_url(scene(640, 360))}, "frame_type": "last_frame"}]})
    assert err.value.body["param"] == "frame_images"
    with pytest.raises(openai.BadRequestError) as err:  # not an image
        c.videos.create(prompt="p", model=MODEL, input_reference=("x.png", b"nope", "image/png"))
    assert err.value.body["code"] == "InvalidImageURL.InvalidFormat"
    with pytest.raises(openai.BadRequestError) as err:  # the blend engine makes no sound
        c.videos.create(prompt="p", model=MODEL, extra_body={"generate_audio": True},
                        input_reference=("f.png", png_bytes(scene(640, 360)), "image/png"))
    assert err.value.body["param"] == "generate_audio"
    with pytest.raises(openai.NotFoundError) as err:
        c.videos.create(prompt="p", model="no-such-model")
    assert err.value.body["param"] == "model"
    with pytest.raises(openai.AuthenticationError) as err:
        client(queue_only, "wrong-key").videos.list()
    assert err.value.body["type"] == "authentication_error"
    queued = queue(c, "p")
    with pytest.raises(openai.BadRequestError) as err:  # not rendered yet
        c.videos.download_content(queued.id)
    assert err.value.body["code"] == "OperationDenied.TaskStatus"
    with httpx.Client(base_url=queue_only.url, headers={"Authorization": f"Bearer {KEY}"}) as h:
        bad = h.get(f"/v1/videos/{queued.id}/content", params={"variant": "poster"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "variant"
        bad = h.post("/v1/videos", content=b"[1]", headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "body"
        bad = h.post("/v1/videos", json={"model": MODEL})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "prompt"
        # routing errors under /v1 come in this surface's envelope too
        for method, path in (("GET", "/v1/nothing"), ("PUT", "/v1/videos")):
            error = h.request(method, path).json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["type"] == "invalid_request_error" and "Request id:" in error["message"]


def test_json_body_image_url_and_the_models_listing(queue_only: LiveServer) -> None:
    with httpx.Client(base_url=queue_only.url, headers={"Authorization": f"Bearer {KEY}"}) as h:
        made = h.post("/v1/videos", json={
            "prompt": "json", "seconds": "2", "size": "640x360",
            "input_reference": {"image_url": data_url(scene(640, 360))},
            "frame_images": [{"type": "image_url", "image_url": data_url(scene(640, 360, 9)),
                              "frame_type": "last_frame"}]})
        assert made.status_code == 200, made.text
        video = made.json()
        assert (video["size"], video["seconds"], video["status"]) == ("640x360", "2", "queued")
        # no model named: the registry's first model with first and last frames
        assert video["model"] == "seedance-1-0-lite-i2v-250428"
        tasks = queue_only.services.tasks
        stored = tasks.full_request(tasks.get(video["id"]))
        assert [i["role"] for i in stored["images"]] == ["first_frame", "last_frame"]

        models = {m["id"]: m for m in h.get("/v1/videos/models").json()["data"]}
    assert models["segue-flow"]["frame_types"] == ["first_frame", "last_frame", "keyframe"]
    assert models["segue-flow"]["max_keyframes"] == 16
    assert models["segue-blend"]["frame_types"] == ["first_frame", "last_frame"]
    assert models["segue-blend"]["max_keyframes"] == 0
    assert not models["segue-flow"]["text_to_video"]
    assert models["seedance-1-0-lite-t2v-250428"]["frame_types"] == []
    assert "1248x704" in models["segue-blend"]["sizes"]
    assert models["segue-blend"]["seconds"][0] == "2"
    assert models["segue-blend"]["size_rules"]["multiple_of"] == 2
    assert models["segue-blend"]["audio"] is False
