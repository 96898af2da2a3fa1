"""The task object: the one JSON shape for GET, list items, Pixazo polling and callbacks."""

from __future__ import annotations

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
    if (row.request or {}).get("generate_audio"):
        body["generate_audio"] = True  # the video carries an AAC sound track
    if row.duration is not None:
        body["duration"] = row.duration
    else:
        body["frames"] = row.frames
    if status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
        body["progress"] = round(row.progress, 1)  # Segue's own; the SDKs ignore it
        if row.eta is not None:
            body["eta"] = round(row.eta, 1)
    if row.error_code:
        body["error"] = {"code": row.error_code, "message": row.error_message or ""}
    if status is TaskStatus.SUCCEEDED:
        expires = int(row.links_expire_at or 0)
        content: dict[str, str] = {}
        if row.video_key:
            content["video_url"] = objects.url(row.video_key, expires)
        if row.last_frame_key:
            content["last_frame_url"] = objects.url(row.last_frame_key, expires)
        body["content"] = content
        body["usage"] = {"completion_tokens": row.tokens or 0, "total_tokens": row.tokens or 0}
    return body
