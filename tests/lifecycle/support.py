"""What the lifecycle tests share: a callback receiver on loopback, a slow engine, requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from segue.domain import Mode
from segue.engines.base import RenderJob
from segue.engines.blend import BlendEngine
from tests.conftest import KEY, LiveServer, data_url, scene

TASKS = "/api/v3/contents/generations/tasks"
FIRST = data_url(scene(320, 320))
LAST = data_url(scene(320, 320, shift=8))


def body(model: str = "segue-blend", text: str = "a pan --rs 480p --dur 2",
         **fields: object) -> dict[str, object]:
    """An Ark create body with two small frames (sides must be > 300 px)."""
    content = [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": FIRST}, "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": LAST}, "role": "last_frame"},
    ]
    return {"model": model, "content": content, **fields}


def wait_until(check: Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")


def create(server: LiveServer, key: str | None = None, **fields: object) -> str:
    with server.client(key or KEY) as c:
        response = c.post(TASKS, json=body(**fields))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    raw: bytes
    answered: int | None  # None: hung up without answering

    @property
    def json(self) -> dict:
        return json.loads(self.raw)

    @property
    def status(self) -> str:
        return str(self.json["status"])


class Receiver:
    """A callback receiver: answers per task status, as told, and records every request.

    ``plan`` maps a task status to the answers each task's first requests for that status
    get, in order: an HTTP status, or ``"hang"`` (wait ``hang_seconds``, then answer 200,
    too late). Requests beyond the plan are answered 200.
    """

    def __init__(self, plan: dict[str, list[int | str]] | None = None,
                 hang_seconds: float = 3.0) -> None:
        self.plan = plan or {}
        self.hang_seconds = hang_seconds
        self.received: list[Received] = []
        self.lock = threading.Lock()  # plan lookups and appends
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                task = json.loads(raw)
                with receiver.lock:
                    steps = receiver.plan.get(task.get("status", ""), [])
                    seen = len(receiver.of(task.get("id", ""), task.get("status")))
                    action = steps[seen] if seen < len(steps) else 200
                    record = Received(time.time(), dict(self.headers.items()), raw, None)
                    receiver.received.append(record)
                if action == "hang":
                    time.sleep(receiver.hang_seconds)
                    action = 200
                record.answered = int(action)
                try:
                    self.send_response(int(action))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up meanwhile

            def log_message(self, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def of(self, task_id: str, status: str | None = None) -> list[Received]:
        """The requests about ``task_id`` (of that status), oldest first."""
        return [r for r in self.received if r.json.get("id") == task_id
                and (status is None or r.status == status)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SlowEngine:
    """The blend engine, slowed down per frame, remembering how far it got."""

    name = "slow-blend"
    modes = frozenset({Mode.FIRST_LAST, Mode.FIRST_FRAME})

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.yielded = 0
        self.stopped = threading.Event()  # set when a render ends early (interrupted)

    def render(self, job: RenderJob) -> Iterator[np.ndarray]:
        try:
            for frame in BlendEngine().render(job):
                time.sleep(self.delay)
                self.yielded += 1
                yield frame
        except BaseException:
            self.stopped.set()
            raise


def use_engine(server: LiveServer, engine: object, model: str = "segue-blend") -> None:
    """Make ``model`` render with ``engine`` in this server's process (tests only)."""
    server.services._engines[model] = engine


def deliveries(server: LiveServer, task_id: str) -> list:
    return server.services.callbacks.store.for_task(task_id)
