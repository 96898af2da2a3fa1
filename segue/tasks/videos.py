"""The OpenAI-style video object of a task, and the webhook event that carries it.

One task, two shapes: ``view.task_object`` is what the Ark and Pixazo surfaces answer,
this is what ``/v1/videos`` answers. Both read the same row, so a task made on one
surface reads on the other.

OpenAI's video has four statuses; Segue's six map onto them. A cancelled task
(a queued task that was deleted) and an expired one show ``failed`` with
``error.code`` ``TaskCancelled`` or ``TaskExpired``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from segue.domain import ADAPTIVE, FPS, TaskStatus, output_size
from segue.tasks.schema import TaskRow

STATUS = {
    TaskStatus.QUEUED: "queued",
    TaskStatus.RUNNING: "in_progress",
    TaskStatus.SUCCEEDED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.EXPIRED: "failed",
    TaskStatus.CANCELLED: "failed",
}
EVENTS = {"completed": "video.completed", "failed": "video.failed"}
CANCELLED_ERROR = {"code": "TaskCancelled",
                   "message": "The video was cancelled (deleted while queued) before it started."}


def video_size(row: TaskRow) -> str:
    """``WxH`` once known; ``auto`` while an adaptive ratio waits for the first frame."""
    request = row.request or {}
    width = row.width or request.get("width")
    height = row.height or request.get("height")
    if width and height:
        return f"{width}x{height}"
    if row.ratio != ADAPTIVE:
        w, h = output_size(row.resolution, row.ratio)
        return f"{w}x{h}"
    return "auto"


def video_seconds(row: TaskRow) -> str:
    if row.duration is not None:
        return str(row.duration)
    return f"{(row.frames - 1) / FPS:g}"  # created on Ark with a frame count


def video_object(row: TaskRow) -> dict[str, Any]:
    status = TaskStatus(row.status)
    error = None
    if row.error_code:
        error = {"code": row.error_code, "message": row.error_message or ""}
    elif status is TaskStatus.CANCELLED:
        error = dict(CANCELLED_ERROR)
    return {
        "id": row.id,
        "object": "video",
        "model": row.model,
        "status": STATUS[status],
        "progress": 100 if status is TaskStatus.SUCCEEDED else int(row.progress or 0),
        "created_at": int(row.created_at),
        "completed_at": int(row.finished_at) if status.final and row.finished_at else None,
        # when the downloadable files lapse (links and content are kept that long)
        "expires_at": int(row.links_expire_at) if row.links_expire_at else None,
        "prompt": (row.request or {}).get("prompt"),
        "seconds": video_seconds(row),
        "size": video_size(row),
        "remixed_from_video_id": None,
        "error": error,
    }


def video_event(row: TaskRow) -> dict[str, Any] | None:
    """The webhook body for a final status (``video.completed`` / ``video.failed``), else None.

    Only the end of a render is announced, as OpenAI did: not queued, running or cancelled.

    As OpenAI's events: ``{id, object: "event", type, created_at, data}``; ``data`` is the
    whole video object (OpenAI sent only its id).
    """
    video = video_object(row)
    kind = EVENTS.get(video["status"])
    if kind is None or row.status == TaskStatus.CANCELLED:  # its owner cancelled it
        return None
    return {"id": "evt_" + secrets.token_hex(12), "object": "event", "type": kind,
            "created_at": int(time.time()), "data": video}
