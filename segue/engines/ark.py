"""The ``ark`` engine: forward a render to a real Ark (ModelArk/Volcengine) endpoint.

Segue keeps its own task, keys, limits and links; the upstream service renders. The
job's images go up as PNG data URLs (already cropped to the output size), the
upstream task is polled, its video downloaded and decoded, and its frames
yielded. An interrupted task (expired) cancels the upstream task when it can.

Registry options: ``base_url`` (default BytePlus), ``api_key`` or ``api_key_env``
(default ``ARK_API_KEY``), ``model`` (the upstream model or ``ep-`` endpoint id),
``poll_interval`` (s), ``timeout`` (s).
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
from PIL import Image

from segue.domain import SIZES, Mode
from segue.engines.base import RenderJob
from segue.errors import SegueError, ServiceUnavailable, TaskInterrupted

DEFAULT_BASE_URL = "https://ark.ap-southeast.bytepluses.com/api/v3"
TASKS = "/contents/generations/tasks"


def _data_url(frame: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _size_names(width: int, height: int) -> tuple[str, str]:
    for resolution, ratios in SIZES.items():
        for ratio, size in ratios.items():
            if size == (width, height):
                return resolution, ratio
    raise SegueError(f"{width}x{height} is not a Seedance output size.")


class ArkEngine:
    name = "ark"
    makes_audio = False
    modes = frozenset({Mode.FIRST_LAST, Mode.FIRST_FRAME, Mode.TEXT, Mode.REFERENCE})

    def __init__(self, model: str, base_url: str = DEFAULT_BASE_URL, api_key: str | None = None,
                 api_key_env: str = "ARK_API_KEY", poll_interval: float = 5.0,
                 timeout: float = 3600.0) -> None:
        self.model, self.base_url = model, base_url.rstrip("/")
        self.api_key = api_key or os.environ.get(api_key_env)
        self.poll_interval, self.timeout = poll_interval, timeout

    def _client(self) -> httpx.Client:
        if not self.api_key:
            raise ServiceUnavailable("The ark engine has no upstream API key: set api_key or the "
                                     "environment variable named by api_key_env.")
        return httpx.Client(base_url=self.base_url, timeout=60,
                            headers={"Authorization": f"Bearer {self.api_key}"})

    def _body(self, job: RenderJob) -> dict[str, object]:
        resolution, ratio = _size_names(job.width, job.height)
        content: list[dict[str, object]] = [{"type": "text", "text": job.prompt}]
        by_mode: dict[Mode, list[tuple[str, np.ndarray | None]]] = {
            Mode.TEXT: [],
            Mode.FIRST_FRAME: [("first_frame", job.first)],
            Mode.FIRST_LAST: [("first_frame", job.first), ("last_frame", job.last)],
            Mode.REFERENCE: [("reference_image", image) for image in job.references],
        }
        for role, image in by_mode[job.mode]:
            assert image is not None
            content.append({"type": "image_url", "image_url": {"url": _data_url(image)},
                            "role": role})
        body: dict[str, object] = {"model": self.model, "content": content,
                                   "resolution": resolution, "ratio": ratio, "seed": job.seed,
                                   "camera_fixed": job.camera_fixed, "watermark": False}
        if (job.frames - 1) % 24 == 0:
            body["duration"] = (job.frames - 1) // 24
        else:
            body["frames"] = job.frames
        return body

    def render(self, job: RenderJob) -> Iterator[np.ndarray]:
        with self._client() as client:
            created = self._call(client.post(TASKS, json=self._body(job)))
            task = self._wait(client, created["id"], job)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "upstream.mp4"
                with client.stream("GET", task["content"]["video_url"]) as response:
                    response.raise_for_status()
                    with path.open("wb") as out:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                yield from _resampled(path, job)

    def _wait(self, client: httpx.Client, task_id: str, job: RenderJob) -> dict:
        started = time.monotonic()
        while True:
            task = self._call(client.get(f"{TASKS}/{task_id}"))
            status = task.get("status")
            if status == "succeeded":
                return task
            if status in ("failed", "expired", "cancelled"):
                error = task.get("error") or {}
                raise SegueError(f"The upstream task {task_id} ended {status}: "
                                 f"{error.get('message', '')}",
                                 code=error.get("code") or "InternalServiceError")
            elapsed = time.monotonic() - started
            if elapsed > self.timeout:
                raise SegueError(f"The upstream task {task_id} did not finish in "
                                 f"{self.timeout:.0f} s.")
            try:
                job.progress(min(0.9, elapsed / (elapsed + 60)))
            except TaskInterrupted:
                client.delete(f"{TASKS}/{task_id}")  # cancels it upstream while queued
                raise
            time.sleep(self.poll_interval)

    @staticmethod
    def _call(response: httpx.Response) -> dict:
        if response.is_success:
            return response.json()  # type: ignore[no-any-return]
        try:
            error = response.json()["error"]
            code, message = error["code"], error["message"]
        except (ValueError, KeyError, TypeError):
            code, message = "InternalServiceError", response.text[:200]
        raise SegueError(f"The upstream Ark endpoint answered {response.status_code}: {message}",
                         code=code)


def _count_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def _resampled(path: Path, job: RenderJob) -> Iterator[np.ndarray]:
    """The upstream video's frames at the job's size and count (nearest frame in time),
    decoded as a stream so that a long 1080p video never sits in memory whole."""
    total = _count_frames(path)
    if total == 0:
        raise SegueError("The upstream video has no frames.")
    wanted = [round(i * (total - 1) / max(job.frames - 1, 1)) for i in range(job.frames)]
    out = 0
    with av.open(str(path)) as container:
        for index, decoded in enumerate(container.decode(video=0)):
            if out < len(wanted) and wanted[out] == index:
                frame = decoded.to_ndarray(format="rgb24")
                if frame.shape[:2] != (job.height, job.width):
                    frame = np.asarray(Image.fromarray(frame).resize(
                        (job.width, job.height), Image.Resampling.LANCZOS))
                while out < len(wanted) and wanted[out] == index:
                    job.progress(0.9 + 0.1 * out / job.frames)
                    yield frame
                    out += 1
    if out != job.frames:
        raise SegueError(f"The upstream video ended after {out} of {job.frames} frames.")
