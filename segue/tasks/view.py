"""The task object: the one JSON shape for GET, list items, Pixazo polling and callbacks."""

from __future__ import annotations

import math
from typing import Any

from segue.domain import FPS, TaskStatus
from segue.storage.base import ObjectStore
from segue.tasks.schema import TaskRow


def task_object(row: TaskRow, objects: ObjectStore) -> dict[str, Any]:
    status = TaskStatus(row.status)
    body: dict[str, Any] = {
        "id": row.id,
        "model": row.model,
        "status": status.value,
        "error": None,
        "seed": row.seed,
        "resolution": row.resolution,
        "ratio": row.ratio,
        "framespersecond": FPS,
        "service_tier": row.service_tier,
        "execution_expires_after": int(row.expires_at - row.created_at),
        "created_at": int(row.created_at),
        "updated_at": int(row.updated_at),
    }
    body.update(_seedance_fields(row))
    if status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
        body["progress"] = round(row.progress, 1)  # Segue's own; the SDKs ignore it
        if row.eta is not None:
            body["eta"] = round(row.eta, 1)
    if row.error_code:
        body["error"] = {"code": row.error_code, "message": row.error_message or ""}
    if status is TaskStatus.SUCCEEDED:
        expires = math.ceil(row.links_expire_at or 0)  # rounded down, a link would end early
        content: dict[str, str] = {}
        if row.video_key:
            # file_url is the SDK's name for the file in the requested output_format
            content["video_url"] = content["file_url"] = objects.url(row.video_key, expires)
        if row.last_frame_key:
            content["last_frame_url"] = objects.url(row.last_frame_key, expires)
        body["content"] = content
        body["usage"] = {"completion_tokens": row.tokens or 0, "total_tokens": row.tokens or 0}
    return body


def _seedance_fields(row: TaskRow) -> dict[str, Any]:
    """Length and the fields added with Seedance 1.5 and 2.x, from the stored request.

    ``duration`` is left out when the request gave ``frames`` (the length is then not a
    whole number of seconds); ``frames`` is always there.
    """
    request = row.request
    body: dict[str, Any] = {"frames": row.frames}
    if row.duration is not None:
        body["duration"] = row.duration
    body.update(
        revised_prompt=request.get("prompt", ""),
        generate_audio=bool(request.get("generate_audio", False)),
        draft=bool(request.get("draft", False)),
        priority=row.priority or 0,
        output_format=request.get("output_format", "mp4"),
    )
    for name in ("safety_identifier", "draft_task_id", "keyframes"):
        if request.get(name) is not None:
            body[name] = request[name]
    return body
