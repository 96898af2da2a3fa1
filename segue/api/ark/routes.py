"""The Ark task API: ``/api/v3/contents/generations/tasks`` and ``/api/v3/models``."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query

from segue.api.ark.protocol import CreateTaskRequest, CreateTaskResponse, ListTasksResponse
from segue.api.deps import BodyHashDep, IdempotencyKey, PrincipalDep, ServicesDep
from segue.domain import TaskStatus
from segue.errors import InvalidParameter
from segue.tasks.view import task_object

router = APIRouter(prefix="/api/v3", tags=["Ark"])
TASKS = "/contents/generations/tasks"
LIST_WINDOW = 7 * 86_400


@router.post(TASKS, response_model=CreateTaskResponse)
def create_task(
    body: CreateTaskRequest, services: ServicesDep, principal: PrincipalDep,
    digest: BodyHashDep, idempotency_key: IdempotencyKey = None,
) -> dict[str, str]:
    request = services.prepare(principal, model=body.model, text=body.text(),
                               images=body.images(), media=body.media(),
                               draft_id=body.draft_task_id(), fields=body.settings(),
                               surface="ark")
    row = services.create_task(principal, request, idempotency_key=idempotency_key,
                               request_hash=digest)
    return {"id": row.id}


def _page(name: str, value: int) -> int:
    if not 1 <= value <= 500:
        raise InvalidParameter(name, f"must be between 1 and 500, got {value}.")
    return value


@router.get(TASKS, response_model=ListTasksResponse)
def list_tasks(
    services: ServicesDep, principal: PrincipalDep,
    page_num: int = 1, page_size: int = 10,
    status: Annotated[str | None, Query(alias="filter.status")] = None,
    task_ids: Annotated[list[str] | None, Query(alias="filter.task_ids")] = None,
    model: Annotated[str | None, Query(alias="filter.model")] = None,
    service_tier: Annotated[str | None, Query(alias="filter.service_tier")] = None,
) -> dict[str, Any]:
    if status and status not in {s.value for s in TaskStatus}:
        raise InvalidParameter("filter.status", f"unknown status {status!r}.")
    total, rows = services.tasks.list_page(
        principal.key_id, page_num=_page("page_num", page_num),
        page_size=_page("page_size", page_size), status=status, task_ids=task_ids or (),
        model=model, service_tier=service_tier, since=time.time() - LIST_WINDOW,
    )
    return {"total": total, "items": [task_object(r, services.objects) for r in rows]}


@router.get(TASKS + "/{task_id}")
def get_task(task_id: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    return task_object(services.tasks.get(task_id, principal.key_id), services.objects)


@router.delete(TASKS + "/{task_id}")
def delete_task(task_id: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Cancel a queued task, or delete a finished one with its files. Answers ``{}``."""
    services.delete_task(task_id, principal.key_id)
    return {}


@router.get("/models")
def list_models(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    data = []
    for entry in services.models:
        item = entry.to_json()
        item["modes"] = sorted(m.value for m in entry.modes & services.engine_modes(entry))
        data.append(item)
    return {"object": "list", "data": data}
