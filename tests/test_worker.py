"""Worker start-up: every served model's engine is built (and loaded) before the first task."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from segue.domain import Mode
from segue.services import Services
from segue.worker import Worker
from tests.conftest import TASKS, ark_task, make_settings, start_server


def test_a_model_that_cannot_load_is_said_in_one_line_and_left_to_other_workers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": [
        {"id": "segue-blend", "engine": "blend", "modes": ["first_last_frame"]},
        {"id": "big-gpu-model", "engine": "diffusion", "modes": ["first_last_frame"],
         "options": {"family": "ltx", "model": str(tmp_path / "missing-weights"),
                     "local_only": True}},
    ]}))
    services = Services.build(make_settings(tmp_path / "data", models_file=models))
    worker = Worker(services)
    with caplog.at_level(logging.WARNING, logger="segue.worker"):
        ready = worker.prepare()
    assert ready == ["segue-blend"]
    failure = next(r for r in caplog.records if getattr(r, "model", "") == "big-gpu-model")
    assert "missing-weights" in failure.reason or "torch" in failure.reason
    assert worker.unavailable == {"big-gpu-model": failure.reason}  # what the fleet is told
    assert worker._claimable == ["segue-blend", "doubao-segue-blend"]


def test_only_the_named_models_are_served(tmp_path: Path) -> None:
    services = Services.build(make_settings(tmp_path / "data"))
    assert Worker(services, models=["segue-flow"]).prepare() == ["segue-flow"]


def test_a_clean_shutdown_hands_the_running_task_back(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    server = start_server(settings)
    with server.client() as c:
        body = ark_task("segue-blend", "long --rs 720p --dur 12")
        task_id = c.post(TASKS, json=body).json()["id"]
        deadline = time.monotonic() + 30
        while c.get(f"/api/v3/contents/generations/tasks/{task_id}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 10  # the render stopped at once, not at its end
    row = server.services.tasks.get(task_id)
    assert (row.status, row.attempts, row.worker_id) == ("queued", 0, None)

    again = start_server(settings)
    try:
        body = again.wait(task_id, timeout=120)
    finally:
        again.stop()
    assert body["status"] == "succeeded"
    assert again.services.tasks.get(task_id).attempts == 1


class DeniedEngine:
    """Fails as a file it may not write does, naming a server path. (A full disk is its own
    error: ``tests/lifecycle/test_full_disk.py``.)"""

    name = "denied"
    modes = frozenset({Mode.FIRST_LAST, Mode.FIRST_FRAME})

    def render(self, job: object) -> Iterator[np.ndarray]:
        raise OSError(13, "Permission denied", "/var/lib/segue/objects/videos/x.mp4")
        yield  # a generator, as engines are


def test_a_failed_render_tells_the_client_no_server_paths(tmp_path: Path) -> None:
    server = start_server(make_settings(tmp_path / "data"))
    try:
        server.services._engines["segue-blend"] = DeniedEngine()
        with server.client() as c:
            body = ark_task("segue-blend", "x --rs 480p --dur 2")
            task_id = c.post(TASKS, json=body).json()["id"]
        error = server.wait(task_id)["error"]
        assert error["code"] == "InternalServiceError"
        assert "Permission denied" in error["message"]
        assert "/var/lib" not in error["message"] and "<path>" in error["message"]
    finally:
        server.stop()


class _Drip(BaseHTTPRequestHandler):
    """Answers every GET with a body of one byte every 0.1 s, for 10 s."""

    def do_GET(self) -> None:  # noqa: N802 - the handler's name is http.server's
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:  # the worker hung up: what the test wants
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_a_slow_image_host_holds_a_task_once_not_once_per_image(tmp_path: Path) -> None:
    """Both frames on a host that drips: each image alone may take 3 s, all of them 1.5 s."""
    drip = ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    drip.daemon_threads = True
    threading.Thread(target=drip.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{drip.server_address[1]}/slow.png"
    server = start_server(make_settings(tmp_path / "data", image_total_timeout=3.0,
                                        inputs_timeout=1.5))
    try:
        body = ark_task("segue-blend", "x --rs 480p --dur 2")
        for item in body["content"][1:]:
            item["image_url"]["url"] = url
        with server.client() as c:
            task_id = c.post(TASKS, json=body).json()["id"]
        started = time.monotonic()
        error = server.wait(task_id)["error"]
        assert error["code"] == "InvalidImageURL.Unreachable"
        # one shared deadline: about 1.5 s, not 3 s per image (6 s)
        assert time.monotonic() - started < 3.0
    finally:
        server.stop()
        drip.shutdown()
        drip.server_close()
