"""The seed document's own examples, against a local server: only host and key changed."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
import requests
from PIL import Image

from segue.media.images import fit_to
from segue.media.video import probe, psnr, read_frames
from tests.conftest import KEY, LiveServer, free_port, png_bytes, scene

MODEL = "seedance-1-0-lite-i2v-250428"


@pytest.fixture(scope="module")
def image_host(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A plain static file server on loopback standing in for the document's image host."""
    root = tmp_path_factory.mktemp("images")
    (root / "first.png").write_bytes(png_bytes(scene(1280, 720, shift=0)))
    (root / "last.png").write_bytes(png_bytes(scene(1280, 720, shift=24)))
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


def test_python_example(server: LiveServer, image_host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    host, root = image_host
    # --- the document's Python example, host and key changed ---
    url = server.url + "/byteplus/v1/generateFrame2VideoTask"
    headers = {"Content-Type": "application/json", "Cache-Control": "no-cache",
               "Ocp-Apim-Subscription-Key": KEY}
    data = {"model": MODEL,
            "text": "Realistic style. Aeroplane from takeoff to fly captured in camera",
            "first_frame": host + "/first.png", "last_frame": host + "/last.png"}
    response = requests.post(url, json=data, headers=headers)
    # ---
    assert response.status_code == 200, response.text
    task_id = response.json()["id"]
    assert task_id.startswith("cgt-") and len(task_id) == len("cgt-20250910201045-sqz6f")
    _check_video(_poll(server.url, task_id), root, tmp_path)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_example(server: LiveServer, image_host) -> None:  # type: ignore[no-untyped-def]
    host, _ = image_host
    body = json.dumps({"model": MODEL, "text": "Realistic style. Aeroplane from takeoff",
                       "first_frame": host + "/first.png", "last_frame": host + "/last.png"})
    out = subprocess.run(
        ["curl", "-s", "-X", "POST", server.url + "/byteplus/v1/generateFrame2VideoTask",
         "-H", "Content-Type: application/json", "-H", "Cache-Control: no-cache",
         "-H", f"Ocp-Apim-Subscription-Key: {KEY}", "--data-raw", body],
        capture_output=True, text=True, timeout=30, check=True,
    )
    task_id = json.loads(out.stdout)["id"]
    polled = subprocess.run(
        ["curl", "-s", "-X", "POST", server.url + "/bytedance-polling/getVideoResult",
         "-H", "Content-Type: application/json", "-H", f"Ocp-Apim-Subscription-Key: {KEY}",
         "--data-raw", json.dumps({"task_id": task_id})],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert json.loads(polled.stdout)["id"] == task_id


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_example(server: LiveServer, image_host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    host, _ = image_host
    script = tmp_path / "example.js"
    script.write_text(f"""
const url = '{server.url}/byteplus/v1/generateFrame2VideoTask';
const headers = {{ 'Content-Type': 'application/json', 'Cache-Control': 'no-cache',
  'Ocp-Apim-Subscription-Key': '{KEY}' }};
const data = {{ model: '{MODEL}', text: 'Realistic style. Aeroplane from takeoff to fly',
  first_frame: '{host}/first.png', last_frame: '{host}/last.png' }};
fetch(url, {{ method: 'POST', headers: headers, body: JSON.stringify(data) }})
  .then(response => response.json())
  .then(data => console.log(JSON.stringify(data)))
  .catch(error => console.error('Error:', error));
""")
    out = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip())["id"].startswith("cgt-")


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
