"""A small Python client for a Segue server, for people without the official Ark SDK.

    from segue import Client

    client = Client("http://127.0.0.1:8000", "my-key")
    task = client.frame_to_video("first.png", "last.png", "a slow pan", duration=3,
                                 progress=lambda t: print(t["status"], t.get("progress")))
    client.download(task["content"]["video_url"], "out.mp4")

``frame_to_video`` speaks the Pixazo gateway routes (``generateFrame2VideoTask`` and
``getVideoResult``); ``create`` speaks the Ark task API, whose duration range starts at 2 s.
Local file paths are sent as data URLs, so the server never needs to reach the caller's disk.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_MODEL = "seedance-1-0-lite-i2v-250428"
TASKS = "/api/v3/contents/generations/tasks"
FINAL = frozenset({"succeeded", "failed", "expired", "cancelled"})
# Pillow's format name -> the MIME subtype the API accepts in a data URL
_MIME = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "BMP": "bmp",
         "TIFF": "tiff", "GIF": "gif"}

Task = dict[str, Any]
ProgressCallback = Callable[[Task], None]


class APIError(Exception):
    """The server refused a request; ``message`` is the API's own message (with request id)."""

    def __init__(self, status: int, code: str, message: str, param: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


class TaskFailed(Exception):
    """A task ended without a video (failed, expired or cancelled); ``task`` holds it."""

    def __init__(self, task: Task) -> None:
        error = task.get("error") or {}
        self.task = task
        self.code = error.get("code", task.get("status", ""))
        super().__init__(error.get("message") or f"The task {task.get('id')} is "
                                                  f"{task.get('status')}.")


def image_reference(image: str | os.PathLike[str]) -> str:
    """A URL or data URL as is; a local file as a ``data:image/<fmt>;base64,`` URL."""
    text = os.fspath(image)
    if isinstance(image, str) and text.lower().startswith(("http://", "https://", "data:")):
        return text
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"{text} is neither an http(s) or data URL nor a file.")
    data = path.read_bytes()
    return f"data:image/{_sniff(data, path)};base64,{base64.b64encode(data).decode()}"


def _sniff(data: bytes, path: Path) -> str:
    # the server checks the real format; the declared one only has to be an accepted name
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return _MIME.get(im.format or "", "png")
    except (UnidentifiedImageError, OSError):
        suffix = path.suffix.lower().lstrip(".")
        return {"jpg": "jpeg", "tif": "tiff"}.get(suffix, suffix or "png")


def api_error(response: httpx.Response) -> APIError:
    """Read either surface's error envelope (Ark's object or Pixazo's string)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return APIError(response.status_code, str(error.get("code", "")),
                        str(error.get("message", "")), str(error.get("param") or ""))
    if isinstance(error, str):
        return APIError(response.status_code, str(body.get("code", "")), error)
    text = response.text.strip() or response.reason_phrase
    return APIError(response.status_code, f"HTTP{response.status_code}", text)


def _settings(values: Mapping[str, Any]) -> dict[str, Any]:
    # None means "not given": the server's default or the prompt's text command applies
    return {k: v for k, v in values.items() if v is not None}


class Client:
    """One server and one key. ``url`` and ``key`` default to $SEGUE_URL and $SEGUE_KEY."""

    def __init__(self, url: str | None = None, key: str | None = None, *,
                 timeout: float = 60.0, poll_interval: float = 1.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = (url or os.environ.get("SEGUE_URL") or DEFAULT_URL).rstrip("/")
        key = key if key is not None else os.environ.get("SEGUE_KEY")
        headers = {"Authorization": f"Bearer {key}", "Ocp-Apim-Subscription-Key": key} if key \
            else {}
        self.poll_interval = poll_interval
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise APIError(0, "ConnectionError",
                           f"Cannot reach the Segue server at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise api_error(response)
        return response.json()

    # --- Pixazo gateway --------------------------------------------------------------------

    def frame_to_video(
        self, first: str | os.PathLike[str], last: str | os.PathLike[str], prompt: str = "", *,
        model: str = DEFAULT_MODEL, wait: bool = True, progress: ProgressCallback | None = None,
        timeout: float | None = None, check: bool = True, **settings: Any,
    ) -> Task:
        """Create a first+last frame task and (by default) wait for it; returns the task.

        ``settings`` are the gateway's optional fields: resolution, ratio, duration (3-12),
        seed, camerafixed, watermark, return_last_frame, callback_url. With ``check`` a task
        that ends without a video raises ``TaskFailed``.
        """
        body = {"model": model, "text": prompt or " ", "first_frame": image_reference(first),
                "last_frame": image_reference(last), **_settings(settings)}
        task_id = self._call("POST", "/byteplus/v1/generateFrame2VideoTask", json=body)["id"]
        if not wait:
            return self.result(task_id)
        return self.wait(task_id, progress=progress, timeout=timeout, check=check,
                         fetch=self.result)

    def result(self, task_id: str) -> Task:
        """``POST /bytedance-polling/getVideoResult``: the task object."""
        return self._call("POST", "/bytedance-polling/getVideoResult",  # type: ignore[no-any-return]
                          json={"task_id": task_id})

    # --- Ark task API ----------------------------------------------------------------------

    def create(self, first: str | os.PathLike[str], last: str | os.PathLike[str] | None = None,
               prompt: str = "", *, model: str = DEFAULT_MODEL,
               keyframes: Sequence[tuple[float, str | os.PathLike[str]]] = (),
               **settings: Any) -> str:
        """Create a task on the Ark surface (first frame, or first + last, with ``keyframes``
        as (seconds, image) between them); returns its id."""
        content: list[dict[str, Any]] = [{"type": "text", "text": prompt}] if prompt else []
        content.append({"type": "image_url", "image_url": {"url": image_reference(first)},
                        "role": "first_frame"})
        if last is not None:
            content.append({"type": "image_url", "image_url": {"url": image_reference(last)},
                            "role": "last_frame"})
        content += [{"type": "image_url", "image_url": {"url": image_reference(image)},
                     "role": "keyframe", "time": time} for time, image in keyframes]
        body = {"model": model, "content": content, **_settings(settings)}
        return str(self._call("POST", TASKS, json=body)["id"])

    def get(self, task_id: str) -> Task:
        return self._call("GET", f"{TASKS}/{task_id}")  # type: ignore[no-any-return]

    def list_tasks(self, status: str | None = None, page_num: int = 1, page_size: int = 10) -> Task:
        params = _settings({"page_num": page_num, "page_size": page_size,
                            "filter.status": status})
        return self._call("GET", TASKS, params=params)  # type: ignore[no-any-return]

    def delete(self, task_id: str) -> None:
        """Cancel a queued task, or delete a finished one."""
        self._call("DELETE", f"{TASKS}/{task_id}")

    def models(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/v3/models")["data"]  # type: ignore[no-any-return]

    # --- both ------------------------------------------------------------------------------

    def wait(self, task_id: str, *, progress: ProgressCallback | None = None,
             timeout: float | None = None, check: bool = True,
             fetch: Callable[[str], Task] | None = None) -> Task:
        """Poll until the task is final, calling ``progress(task)`` after every poll."""
        fetch = fetch or self.get
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            task = fetch(task_id)
            if progress is not None:
                progress(task)
            if task.get("status") in FINAL:
                if check and task["status"] != "succeeded":
                    raise TaskFailed(task)
                return task
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"The task {task_id} is still {task.get('status')} after "
                                   f"{timeout} s.")
            time.sleep(self.poll_interval)

    def download(self, url: str, path: str | os.PathLike[str]) -> Path:
        """Stream a video or last-frame link to ``path``."""
        target = Path(path)
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    raise api_error(response)
                with target.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise APIError(0, "ConnectionError", f"Cannot download {url}: {exc}") from exc
        return target
