"""Storyboards (keyframes at chosen times) through each surface, over real HTTP on loopback.

Each video is rendered by the flow engine in the server's worker, downloaded and decoded
with PyAV: every keyframe must be found on frame round(time × 24), as close to its input
as the ends are to theirs, and on no frame beside it.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from byteplussdkarkruntime import Ark

from segue.domain import FPS
from segue.engines.flow import FlowEngine
from segue.media.images import fit_to
from segue.media.video import psnr, read_frames
from tests.conftest import KEY, LiveServer, data_url, free_port, png_bytes, scene

TASKS = "/api/v3/contents/generations/tasks"
W, H = 864, 480  # 480p 16:9
SHIFT = 10  # px the picture moves from one stop of the storyboard to the next


def stop(k: int) -> np.ndarray:
    """The picture at the k-th stop (0 is the first frame): moved right, its noise its own."""
    return scene(640, 360, shift=SHIFT * k, seed=k)


def check_storyboard(video_url: str, keyframes: dict[int, np.ndarray], frames: int,
                     tmp_path: Path, away: int = 3) -> None:
    """Each keyframe on its frame (``keyframes`` has the ends too): PSNR as high as the
    ends', and higher there than on the frames ``away`` either side."""
    path = tmp_path / "story.mp4"
    path.write_bytes(httpx.get(video_url, timeout=30).content)
    video = read_frames(path)
    assert len(video) == frames and video[0].shape == (H, W, 3)
    from PIL import Image

    expected = {i: fit_to(Image.fromarray(im), W, H) for i, im in keyframes.items()}
    ends = min(psnr(video[0], expected[0]), psnr(video[-1], expected[frames - 1]))
    assert ends >= 35
    for index, image in expected.items():
        here = psnr(video[index], image)
        assert here >= ends - 1.0, (index, here, ends)
        for beside in (index - away, index + away):
            if 0 <= beside < frames:
                assert psnr(video[beside], image) < here - 1.5, (index, beside)


@pytest.fixture(scope="module")
def image_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A static file server on loopback: the stops as PNG files."""
    root = tmp_path_factory.mktemp("stops")
    for k in range(7):
        (root / f"stop{k}.png").write_bytes(png_bytes(stop(k)))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def ark_content(times: list[float], end: int, text: str = "a slow pan") -> list[dict]:
    image = {"type": "image_url"}
    return [
        {"type": "text", "text": text},
        {**image, "image_url": {"url": data_url(stop(0))}, "role": "first_frame"},
        *({**image, "image_url": {"url": data_url(stop(k + 1))}, "role": "keyframe", "time": t}
          for k, t in enumerate(times)),
        {**image, "image_url": {"url": data_url(stop(end))}, "role": "last_frame"},
    ]


def test_ark_sdk_three_keyframes_each_on_its_frame(server: LiveServer, tmp_path: Path) -> None:
    client = Ark(base_url=server.url + "/api/v3", api_key=KEY, max_retries=0)
    times = [0.5, 1.0, 1.5]
    created = client.content_generation.tasks.create(
        model="segue-flow", content=ark_content(times, 4), resolution="480p", duration=2)
    with server.client() as c:
        queued = c.get(f"{TASKS}/{created.id}").json()
    # data URLs are not repeated in every poll; the times and frames are
    assert queued["keyframes"] == [{"time": t, "frame": round(t * FPS), "image_url": None}
                                   for t in times]
    body = server.wait(created.id)
    assert body["status"] == "succeeded", body
    check_storyboard(body["content"]["video_url"],
                     {0: stop(0), 12: stop(1), 24: stop(2), 36: stop(3), 48: stop(4)},
                     49, tmp_path)


def test_pixazo_five_keyframes_from_urls(server: LiveServer, image_host: str,
                                         tmp_path: Path) -> None:
    times = [0.5, 1.0, 1.5, 2.0, 2.5]
    body = {"model": "segue-flow", "text": "a slow pan", "resolution": "480p", "duration": 3,
            "first_frame": f"{image_host}/stop0.png", "last_frame": f"{image_host}/stop6.png",
            # given out of order: the times place them
            "keyframes": [{"image": f"{image_host}/stop{k + 1}.png", "time": t}
                          for k, t in reversed(list(enumerate(times)))]}
    with server.client(pixazo=True) as c:
        response = c.post("/byteplus/v1/generateFrame2VideoTask", json=body)
        assert response.status_code == 200, response.text
        task_id = response.json()["id"]
    task = server.wait(task_id)
    assert task["status"] == "succeeded", task
    assert task["keyframes"] == [
        {"time": t, "frame": round(t * FPS), "image_url": f"{image_host}/stop{k + 1}.png"}
        for k, t in enumerate(times)]
    expected = {0: stop(0), 72: stop(6)}
    expected.update({round(t * FPS): stop(k + 1) for k, t in enumerate(times)})
    check_storyboard(task["content"]["video_url"], expected, 73, tmp_path)


def test_openai_client_one_keyframe(server: LiveServer, tmp_path: Path) -> None:
    """The openai client sends a form: the keyframes come first, so that the form's items
    line up (each item's fields are matched by their order)."""
    c = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    video = c.videos.create(
        prompt="a slow pan", model="segue-flow", seconds="2", size="864x480",  # type: ignore[arg-type]
        input_reference=("first.png", png_bytes(stop(0)), "image/png"),
        extra_body={"frame_images": [
            {"type": "image_url", "image_url": {"url": data_url(stop(1))},
             "frame_type": "keyframe", "time": 0.75},
            {"type": "image_url", "image_url": {"url": data_url(stop(4))},
             "frame_type": "last_frame"}]})
    task = server.wait(video.id)
    assert task["status"] == "succeeded", task
    assert [k["frame"] for k in task["keyframes"]] == [18]
    check_storyboard(task["content"]["video_url"], {0: stop(0), 18: stop(1), 48: stop(4)},
                     49, tmp_path)


def test_flow_engine_puts_each_keyframe_exactly_on_its_frame() -> None:
    """Before encoding, the keyframes are the frames at their indices, bit for bit; the
    frame count is the asked one (a span's first frame is not made twice)."""
    from segue.domain import Mode
    from segue.engines.base import RenderJob

    stops = [stop(k)[:, :, :] for k in range(4)]
    job = RenderJob(prompt="", mode=Mode.FIRST_LAST, width=640, height=360, frames=29, seed=1,
                    first=stops[0], last=stops[3], keyframes=[(7, stops[1]), (8, stops[2])])
    frames = list(FlowEngine(preset="fast", workers=1).render(job))
    assert len(frames) == 29
    for index, image in ((0, stops[0]), (7, stops[1]), (8, stops[2]), (28, stops[3])):
        assert np.array_equal(frames[index], image), index
    assert not np.array_equal(frames[6], stops[1]) and not np.array_equal(frames[9], stops[2])


def test_flow_motion_keeps_its_pace_through_a_keyframe_where_the_spans_agree() -> None:
    """Stops on one steady path (1 px a frame) with spans of 8 and 20 frames: every frame,
    on both sides of the keyframe, is where the steady path puts it (a pause, a jump or a
    frame made twice at the keyframe would put the frames after it a pixel or more off)."""
    from segue.domain import Mode
    from segue.engines.base import RenderJob

    wide = scene(680, 360, seed=3)

    def at(shift: int) -> np.ndarray:  # the whole picture, its grain too, moved right
        return np.ascontiguousarray(wide[:, 40 - shift:680 - shift])

    job = RenderJob(prompt="", mode=Mode.FIRST_LAST, width=640, height=360, frames=29, seed=1,
                    camera_fixed=True, first=at(0), last=at(28), keyframes=[(8, at(8))])
    frames = list(FlowEngine(preset="fast", workers=1).render(job))
    inner = (slice(8, -8), slice(40, -40))  # away from the edge the motion uncovers
    worst = min(psnr(f[inner], at(k)[inner]) for k, f in enumerate(frames))
    assert worst >= 40, worst
    assert psnr(frames[9][inner], at(8)[inner]) < worst - 3  # a pixel off is well below


def test_a_draft_storyboard_and_its_final(server: LiveServer, tmp_path: Path) -> None:
    """A final made from a draft keeps the draft's keyframes, on the same frames."""
    model = "seedance-1-5-pro-251215"  # drafts; 4-12 s
    body = {"model": model, "content": ark_content([2.0], 2), "duration": 4, "draft": True,
            "resolution": "480p"}
    with server.client() as c:
        draft_id = c.post(TASKS, json=body).json()["id"]
        assert server.wait(draft_id)["status"] == "succeeded"
        response = c.post(TASKS, json={"model": model, "resolution": "480p", "content": [
            {"type": "draft_task", "draft_task": {"id": draft_id}}]})
        assert response.status_code == 200, response.text
    final = server.wait(response.json()["id"])
    assert final["status"] == "succeeded", final
    assert final["keyframes"] == [{"time": 2.0, "frame": 48, "image_url": None}]
    check_storyboard(final["content"]["video_url"], {0: stop(0), 48: stop(1), 96: stop(2)},
                     97, tmp_path, away=12)  # 48 frames a stop: 2.5 px in 12 frames


def test_a_keyframe_the_worker_cannot_fetch_fails_the_task_by_name(
        server: LiveServer, image_host: str) -> None:
    body = {"model": "segue-flow", "text": "a slow pan", "duration": 3,
            "first_frame": f"{image_host}/stop0.png", "last_frame": f"{image_host}/stop2.png",
            "keyframes": [{"image": f"{image_host}/missing.png", "time": 1.5}]}
    with server.client(pixazo=True) as c:
        task_id = c.post("/byteplus/v1/generateFrame2VideoTask", json=body).json()["id"]
    task = server.wait(task_id)
    assert task["status"] == "failed"
    assert task["error"]["code"].startswith("InvalidImageURL")
    assert "`keyframe@1.5s`" in task["error"]["message"]
