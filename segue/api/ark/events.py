"""The progress stream: ``GET /api/v3/contents/generations/tasks/{id}/events`` (SSE).

The stream reads the task from the store (its worker may be another process)
and sends the task object whenever its status or progress changes, a comment
line when it has been silent for a while (proxies close idle connections), and
ends after a final status. Auth and 404 rules are those of ``GET`` on the task.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from segue.api.ark.routes import TASKS
from segue.api.deps import PrincipalDep, ServicesDep
from segue.api.openapi import AUTH, ArkError, errors, text_response
from segue.domain import TaskStatus
from segue.errors import NotFound
from segue.services import Services
from segue.tasks.schema import TaskRow
from segue.tasks.view import task_object

router = APIRouter(prefix="/api/v3", tags=["Ark"], responses=errors(ArkError, *AUTH))
KEEPALIVE = b": keep-alive\n\n"


@router.get(
    TASKS + "/{task_id}/events",
    response_class=StreamingResponse,
    responses={**text_response("text/event-stream",
                               "Server-Sent Events; each `data:` is the task object."),
               **errors(ArkError, 404)},
)
async def task_events(task_id: str, request: Request, services: ServicesDep,
                      principal: PrincipalDep) -> StreamingResponse:
    """Stream the task's status and progress until it ends."""
    row = await run_in_threadpool(services.tasks.get, task_id, principal.key_id)
    return StreamingResponse(
        _stream(services, row, request), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def event_data(row: TaskRow, services: Services) -> dict[str, Any]:
    """The task object, with ``progress`` in every state (100 once succeeded)."""
    body = task_object(row, services.objects)
    body.setdefault("progress", round(row.progress or 0.0, 1))
    return body


async def _stream(services: Services, row: TaskRow, request: Request) -> AsyncIterator[bytes]:
    settings = services.settings
    sent: tuple[str, float] | None = None
    last_write = time.monotonic()
    while True:
        if (row.status, row.progress) != sent:
            data = json.dumps(event_data(row, services), separators=(",", ":"))
            yield f"data: {data}\n\n".encode()
            sent, last_write = (row.status, row.progress), time.monotonic()
        if TaskStatus(row.status).final:
            return
        await asyncio.sleep(settings.events_poll_interval)
        if await request.is_disconnected():
            return
        if time.monotonic() - last_write >= settings.events_keepalive:
            yield KEEPALIVE
            last_write = time.monotonic()
        try:
            row = await run_in_threadpool(services.tasks.get, row.id)
        except NotFound:  # deleted meanwhile (swept)
            return
