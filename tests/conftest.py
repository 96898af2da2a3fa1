"""Shared fixtures: a real Segue server on loopback, over a real SQLite store in a temp dir."""

from __future__ import annotations

import base64
import io
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from PIL import Image

from segue.app import create_app, server_config
from segue.settings import Settings

# The default data folder is per user (~/.local/share/segue): a test, or a command it runs,
# that names no folder of its own writes under a temporary one, never the real home.
os.environ.pop("SEGUE_DATA_DIR", None)
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="segue-tests-xdg-")

TASKS = "/api/v3/contents/generations/tasks"
KEY = "test-key-1"
OTHER_KEY = "test-key-2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    settings: Settings
    app: object
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.app.state.services  # type: ignore[attr-defined]

    def client(self, key: str | None = KEY, pixazo: bool = False) -> httpx.Client:
        headers = {}
        if key is not None:
            headers = ({"Ocp-Apim-Subscription-Key": key} if pixazo
                       else {"Authorization": f"Bearer {key}"})
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def wait(self, task_id: str, key: str = KEY, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        with self.client(key) as c:
            while time.monotonic() < deadline:
                body = c.get(f"/api/v3/contents/generations/tasks/{task_id}").json()
                if body["status"] not in ("queued", "running"):
                    return body
                time.sleep(0.1)
        raise AssertionError(f"task {task_id} did not finish in {timeout} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def start_server(settings: Settings, workers: int = 1) -> LiveServer:
    app = create_app(settings, workers=workers)
    config = server_config(app, "127.0.0.1", settings.port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return LiveServer(settings.resolved_public_url, settings, app, server, thread)


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    port = free_port()
    values: dict[str, object] = dict(
        data_dir=data_dir, port=port, api_keys=[KEY, OTHER_KEY],
        allow_private_urls=True, poll_interval=0.05, sweep_interval=0.5,
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(make_settings(tmp_path / "data"))
    yield live
    live.stop()


PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """An empty database on each store Segue runs on: a SQLite file in the test's temp dir,
    then a private schema of the PostgreSQL service (``pg_url``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'segue.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database URL on a fresh, private schema of the PostgreSQL service (skips without it)."""
    import uuid

    from sqlalchemy import text

    from segue.tasks.db import make_engine

    admin = make_engine(PG_URL)
    try:
        with admin.connect():
            pass
    except Exception:
        admin.dispose()
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    schema = "t_" + uuid.uuid4().hex[:10]
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def scene(width: int, height: int, shift: int = 0, seed: int = 0) -> np.ndarray:
    """A smooth, textured RGB test picture; ``shift`` moves its content right by that many px."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x = x - shift
    img = np.stack([
        128 + 60 * np.sin(x / 23.0) + 40 * np.cos(y / 31.0),
        128 + 50 * np.sin((x + y) / 41.0),
        128 + 60 * np.cos(x / 17.0 - y / 29.0),
    ], axis=-1)
    img += rng.normal(0, 2, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def data_url(array: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(array)).decode()


def sdk_wait(client: Any, task_id: str, timeout: float = 120) -> Any:
    """The task once it has ended, read through an official Ark SDK client (BytePlus's or
    Volcengine's: they share the interface)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.content_generation.tasks.get(task_id=task_id)
        if task.status not in ("queued", "running"):
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish in {timeout} s")


def ark_task(model: str, text: str, shift: int = 9) -> dict:
    """An Ark create body: a prompt and a 640x360 first/last pair ``shift`` px apart."""
    return {"model": model, "content": [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": data_url(scene(640, 360))},
         "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": data_url(scene(640, 360, shift))},
         "role": "last_frame"}]}
