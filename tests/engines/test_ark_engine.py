"""The ark engine forwards to an Ark endpoint: here a test double of one on loopback."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse

from segue.media.video import VideoEncoder, probe
from tests.conftest import (
    TASKS,
    LiveServer,
    ark_task,
    data_url,
    free_port,
    make_settings,
    scene,
    start_server,
)

UPSTREAM_KEY = "upstream-secret"


class FakeArk:
    """Just enough of Ark's task API: create, get (queued, then succeeded), delete."""

    def __init__(self, root: Path, frames: int = 49, fail: bool = False) -> None:
        self.root, self.frames, self.fail = root, frames, fail
        self.bodies: list[dict] = []
        self.deleted: list[str] = []
        self.app = FastAPI()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = self.app

        @app.post("/api/v3/contents/generations/tasks")
        async def create(request: Request) -> JSONResponse:
            if request.headers.get("authorization") != f"Bearer {UPSTREAM_KEY}":
                return JSONResponse({"error": {"code": "AuthenticationError", "message": "no",
                                               "param": "", "type": "Unauthorized"}}, 401)
            self.bodies.append(await request.json())
            return JSONResponse({"id": f"cgt-up-{len(self.bodies)}"})

        @app.get("/api/v3/contents/generations/tasks/{task_id}")
        def get(task_id: str) -> JSONResponse:
            if self.fail:
                return JSONResponse({"id": task_id, "status": "failed", "error": {
                    "code": "OutputVideoSensitiveContentDetected", "message": "flagged"}})
            self._video(864, 480)
            return JSONResponse({"id": task_id, "status": "succeeded",
                                 "content": {"video_url": f"{self.url}/video.mp4"}})

        @app.delete("/api/v3/contents/generations/tasks/{task_id}")
        def delete(task_id: str) -> JSONResponse:
            self.deleted.append(task_id)
            return JSONResponse({})

        @app.get("/video.mp4")
        def video() -> FileResponse:
            return FileResponse(self.root / "up.mp4", media_type="video/mp4")

    def _video(self, width: int, height: int) -> None:
        path = self.root / "up.mp4"
        if path.exists():
            return
        with VideoEncoder(path, width, height, self.frames) as enc:
            for i in range(self.frames):
                enc.write(np.full((height, width, 3), (2 * i) % 256, np.uint8))

    def __enter__(self) -> FakeArk:
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _segue(tmp_path: Path, upstream: FakeArk) -> LiveServer:
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": [{
        "id": "seedance-1-0-lite-i2v-250428", "engine": "ark", "tier": "lite",
        "modes": ["first_frame", "first_last_frame", "reference"],
        "options": {"model": "upstream-lite", "base_url": upstream.url + "/api/v3",
                    "api_key": UPSTREAM_KEY, "poll_interval": 0.05}}]}))
    return start_server(make_settings(tmp_path / "data", models_file=models))


@pytest.mark.parametrize("upstream_frames", [49, 97])
def test_forwards_and_returns_the_upstream_video(tmp_path: Path, upstream_frames: int) -> None:
    with FakeArk(tmp_path, frames=upstream_frames) as upstream:
        server = _segue(tmp_path, upstream)
        try:
            with server.client() as c:
                r = c.post(TASKS, json=ark_task("seedance-1-0-lite-i2v-250428",
                                                "a pan --rs 480p --dur 2 --seed 7"))
                assert r.status_code == 200, r.text
            body = server.wait(r.json()["id"])
            assert body["status"] == "succeeded", body
            import httpx

            out = tmp_path / "out.mp4"
            out.write_bytes(httpx.get(body["content"]["video_url"]).content)
            info = probe(out)
            assert (info.width, info.height, info.frames) == (864, 480, 49)
        finally:
            server.stop()
    sent = upstream.bodies[0]
    assert sent["model"] == "upstream-lite" and sent["seed"] == 7
    assert (sent["resolution"], sent["ratio"], sent["duration"]) == ("480p", "16:9", 2)
    assert [c.get("role") for c in sent["content"]] == [None, "first_frame", "last_frame"]
    assert sent["content"][0]["text"] == "a pan"
    assert sent["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_upstream_failure_fails_the_task_with_its_code(tmp_path: Path) -> None:
    with FakeArk(tmp_path, fail=True) as upstream:
        server = _segue(tmp_path, upstream)
        try:
            with server.client() as c:
                r = c.post("/byteplus/v1/generateFrame2VideoTask", json={
                    "model": "seedance-1-0-lite-i2v-250428", "text": "x --rs 480p --dur 3",
                    "first_frame": data_url(scene(640, 360)),
                    "last_frame": data_url(scene(640, 360, 4))})
            body = server.wait(r.json()["id"])
        finally:
            server.stop()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "OutputVideoSensitiveContentDetected"
    assert "flagged" in body["error"]["message"]
