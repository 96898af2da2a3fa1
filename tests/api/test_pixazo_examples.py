"""The seed document's own examples, against a local server: only host and key changed."""

from __future__ import annotations

import ast
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
import requests
from PIL import Image

from segue.media.images import fit_to
from segue.media.video import probe, psnr, read_frames
from tests.conftest import (
    KEY,
    LiveServer,
    free_port,
    make_settings,
    png_bytes,
    scene,
    start_server,
)

MODEL = "seedance-1-0-lite-i2v-250428"


@pytest.fixture(scope="module")
def image_host(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A plain static file server on loopback standing in for the document's image host."""
    root = tmp_path_factory.mktemp("images")
    (root / "first.png").write_bytes(png_bytes(scene(1280, 720, shift=0)))
    (root / "last.png").write_bytes(png_bytes(scene(1280, 720, shift=24)))
    (root / "wan-t2i").mkdir()  # the paths of the document's own images
    for name, path in (("first.png", FIRST), ("last.png", LAST)):
        (root / path.lstrip("/")).write_bytes((root / name).read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", root
    httpd.shutdown()


def _poll(base: str, task_id: str) -> dict:
    """The document's polling request, repeated until the task ends."""
    url = base + "/bytedance-polling/getVideoResult"
    headers = {"Content-Type": "application/json", "Cache-Control": "no-cache",
               "Ocp-Apim-Subscription-Key": KEY}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = requests.post(url, json={"task_id": task_id}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.2)
    raise AssertionError("task did not finish")


def _check_video(body: dict, root: Path, tmp_path: Path) -> None:
    assert body["status"] == "succeeded", body
    assert body["model"] == MODEL
    assert body["usage"] == {"completion_tokens": 103818, "total_tokens": 103818}
    assert body["resolution"] == "720p" and body["ratio"] == "16:9" and body["duration"] == 5
    assert isinstance(body["created_at"], int) and body["updated_at"] >= body["created_at"]
    video = tmp_path / "out.mp4"
    video.write_bytes(httpx.get(body["content"]["video_url"]).content)
    info = probe(video)
    assert (info.width, info.height, info.frames, info.fps) == (1248, 704, 121, 24)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    frames = read_frames(video)
    first = fit_to(Image.open(root / "first.png"), 1248, 704)
    last = fit_to(Image.open(root / "last.png"), 1248, 704)
    assert psnr(frames[0], first) >= 35
    assert psnr(frames[-1], last) >= 35


EXAMPLES = Path(__file__).parent / "examples"
GATEWAY = "https://gateway.pixazo.ai"
IMAGE_HOST = "https://pub-582b7213209642b9b995c96c95a30381.r2.dev"
FIRST = "/wan-t2i/wan-t2i-75d44f7d-a954-46b0-a603-10c09cb5df84-0.png"
LAST = "/wan-t2i/wan-t2i-47c06b16-ce7f-4977-8f7c-a04384409934-0.png"
TASK_ID = re.compile(r"cgt-\d{14}-[a-z0-9]{5}")


def example(name: str, base: str, images: str, tmp_path: Path) -> Path:
    """The document's example, written where it can run, with only host and key changed."""
    text = (EXAMPLES / name).read_text()
    text = text.replace(GATEWAY, base).replace(IMAGE_HOST, images)
    path = tmp_path / name
    path.write_text(text.replace("YOUR_SUBSCRIPTION_KEY", KEY))
    return path


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server without workers: the examples' tasks are created and stay queued."""
    live = start_server(make_settings(tmp_path_factory.mktemp("idle")), workers=0)
    yield live
    live.stop()


def _created(live: LiveServer, output: str, host: str) -> str:
    """The task the example printed, checked to hold exactly the document's request."""
    found = TASK_ID.search(output)
    assert found, output
    row = live.services.tasks.get(found.group(0))
    assert row.model == MODEL
    assert row.request["prompt"] == "Realistic style. Aeroplane from takeoff to fly captured in " \
                                    "camera"
    request = live.services.tasks.full_request(row)
    assert [image["url"] for image in request["images"]] == [host + FIRST, host + LAST]
    return row.id


def test_python_example(server: LiveServer, image_host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    host, root = image_host
    script = example("create.py", server.url, host, tmp_path)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    task_id = _created(server, out.stdout, host)
    assert ast.literal_eval(out.stdout.strip()) == {"id": task_id}
    _check_video(_poll(server.url, task_id), root, tmp_path)


@pytest.mark.parametrize("name,command", [
    ("create.sh", ["bash"]),
    ("create.js", ["node"]),
    ("ApiClient.java", ["java"]),  # runs the source file directly (JDK 11+)
    ("create.php", ["php"]),
])
def test_document_example(idle_server: LiveServer, image_host, tmp_path: Path,  # type: ignore[no-untyped-def]
                          name: str, command: list[str]) -> None:
    if shutil.which(command[0]) is None or (name == "create.sh" and not shutil.which("curl")):
        pytest.skip(f"{command[0]} is not installed (.ci/run installs it)")
    host, _ = image_host
    script = example(name, idle_server.url, host, tmp_path)
    out = subprocess.run([*command, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    _created(idle_server, out.stdout, host)
    if name == "create.php":
        assert out.stdout.startswith("HTTP Code: 200\n")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_h2c_upgrade_offer_keeps_the_body(idle_server: LiveServer, image_host,  # type: ignore[no-untyped-def]
                                         tmp_path: Path) -> None:
    """An HTTP/1.1 request offering an h2c upgrade (curl --http2, Java) is read in full."""
    host, _ = image_host
    body = json.dumps({"model": MODEL, "first_frame": host + FIRST, "last_frame": host + LAST,
                       "text": "Realistic style. Aeroplane from takeoff to fly captured in camera"})
    out = subprocess.run(
        ["curl", "-s", "--http2", "-X", "POST",
         idle_server.url + "/byteplus/v1/generateFrame2VideoTask",
         "-H", "Content-Type: application/json", "-H", f"Ocp-Apim-Subscription-Key: {KEY}",
         "--data-raw", body], capture_output=True, text=True, timeout=60, check=True)
    _created(idle_server, out.stdout, host)
    polled = subprocess.run(
        ["curl", "-s", "--http2", "-X", "POST",
         idle_server.url + "/bytedance-polling/getVideoResult",
         "-H", "Content-Type: application/json", "-H", f"Ocp-Apim-Subscription-Key: {KEY}",
         "--data-raw", json.dumps({"task_id": json.loads(out.stdout)["id"]})],
        capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(polled.stdout)["status"] == "queued"


def test_image_to_video_and_text_routes(server: LiveServer, image_host) -> None:  # type: ignore[no-untyped-def]
    host, _ = image_host
    with server.client(pixazo=True) as c:
        r = c.post("/byteplus/v1/generateImage2VideoTask", json={
            "model": MODEL, "content": [{"type": "text", "text": "a plane"},
                                        {"type": "image_url", "image_url": host + "/first.png"}]})
        # one first frame: the flow engine renders only first+last, and says so
        assert r.status_code == 400
        assert r.json()["code"] == "InvalidParameter"
        assert "first-frame" in r.json()["error"]
        r = c.post("/byteplus/v1/generateVideoTask",
                   json={"model": "seedance-1-0-lite-t2v-250428", "text": "a cat"})
        assert r.status_code == 400 and "text-to-video" in r.json()["error"]
        r = c.post("/byteplus/v1/generateImage2VideoTask", json={
            "model": "segue-blend", "content": [{"type": "text", "text": "still --rs 480p --dur 3"},
                                                {"type": "image_url",
                                                 "image_url": host + "/first.png"}]})
        assert r.status_code == 200, r.text
    body = server.wait(r.json()["id"])
    assert body["status"] == "succeeded" and body["duration"] == 3
    assert body["usage"]["total_tokens"] == 864 * 480 * 73 // 1024


def test_callback_url_and_options_are_kept(server: LiveServer, image_host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    host, _ = image_host
    with server.client(pixazo=True) as c:
        r = c.post("/byteplus/v1/generateFrame2VideoTask", json={
            "model": "segue-blend", "text": "x --rs 720p --dur 5",
            "first_frame": host + "/first.png", "last_frame": host + "/last.png",
            "resolution": "480p", "duration": 3, "framepersecond": 24, "watermark": True,
            "seed": 42, "camerafixed": True, "callback_url": "http://127.0.0.1:9/cb"})
        assert r.status_code == 200, r.text
    body = server.wait(r.json()["id"])
    # body fields win over the text commands
    assert (body["resolution"], body["duration"], body["seed"]) == ("480p", 3, 42)
    row = server.services.tasks.get(body["id"])
    assert row.callback_url == "http://127.0.0.1:9/cb"
    assert row.request["watermark"] is True and row.request["camera_fixed"] is True
    video = tmp_path / "wm.mp4"
    video.write_bytes(httpx.get(body["content"]["video_url"]).content)
    with av.open(str(video)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    original = fit_to(Image.open(host_path(image_host) / "first.png"), 864, 480)
    corner = np.abs(frame[-60:, -250:].astype(int) - original[-60:, -250:]).mean()
    elsewhere = np.abs(frame[:200, :400].astype(int) - original[:200, :400]).mean()
    assert corner > 3 * elsewhere + 5  # the watermark is drawn in the corner only


def host_path(image_host) -> Path:  # type: ignore[no-untyped-def]
    return image_host[1]
