"""The Ark task API: ``/api/v3/contents/generations/tasks`` and ``/api/v3/models``."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query

from segue.api.ark.protocol import (
    CreateTaskRequest,
    CreateTaskResponse,
    EmptyObject,
    ListTasksResponse,
    ModelList,
)
from segue.api.deps import (
    BodyHashDep,
    CreateSlots,
    IdempotencyKey,
    PrincipalDep,
    ServicesDep,
    read,
    run_create,
)
from segue.api.openapi import AUTH, CREATE, ArkError, errors
from segue.api.polls import poll
from segue.domain import TaskStatus
from segue.keyframes import keyframe_limit
from segue.keys import Principal
from segue.services import Services
from segue.tasks.view import task_object

router = APIRouter(prefix="/api/v3", tags=["Ark"], responses=errors(ArkError, *AUTH))
TASKS = "/contents/generations/tasks"
LIST_WINDOW = 7 * 86_400


@router.post(TASKS, response_model=CreateTaskResponse, responses=errors(ArkError, *CREATE))
async def create_task(
    body: CreateTaskRequest, services: ServicesDep, principal: PrincipalDep,
    digest: BodyHashDep, slots: CreateSlots, idempotency_key: IdempotencyKey = None,
) -> dict[str, str]:
    return await run_create(slots, _create, services, principal, body, digest, idempotency_key)


def _create(services: Services, principal: Principal, body: CreateTaskRequest, digest: str,
            idempotency_key: str | None) -> dict[str, str]:
    request = services.prepare(principal, model=body.model, text=body.text(),
                               images=body.images(), media=body.media(),
                               draft_id=body.draft_task_id(), fields=body.settings(),
                               surface="ark")
    row = services.create_task(principal, request, idempotency_key=idempotency_key,
                               request_hash=digest)
    return {"id": row.id}


Page = Annotated[int, Query(ge=1, le=500)]


@router.get(TASKS, response_model=ListTasksResponse, responses=errors(ArkError, 400))
def list_tasks(
    services: ServicesDep, principal: PrincipalDep, page_num: Page = 1, page_size: Page = 10,
    status: Annotated[TaskStatus | None, Query(alias="filter.status")] = None,
    task_ids: Annotated[list[str] | None, Query(alias="filter.task_ids")] = None,
    model: Annotated[str | None, Query(alias="filter.model")] = None,
    service_tier: Annotated[str | None, Query(alias="filter.service_tier")] = None,
) -> dict[str, Any]:
    total, rows = services.tasks.list_page(
        principal.key_id, page_num=page_num, page_size=page_size,
        status=status.value if status else None, task_ids=task_ids or (),
        model=model, service_tier=service_tier, since=time.time() - LIST_WINDOW,
    )
    return {"total": total, "items": [task_object(r, services.objects) for r in rows]}


@poll(router, TASKS + "/{task_id}", responses=errors(ArkError, 404))
async def get_task(task_id: str, services: ServicesDep, principal: PrincipalDep
                   ) -> dict[str, Any]:
    row = await read(services.tasks, services.tasks.get, task_id, principal.key_id)
    return task_object(row, services.objects)


@router.delete(TASKS + "/{task_id}", response_model=EmptyObject,
               responses=errors(ArkError, 400, 404))
def delete_task(task_id: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Cancel a queued task, or delete a finished one with its files. Answers ``{}``."""
    services.delete_task(task_id, principal.key_id)
    return {}


@router.get("/models", response_model=ModelList)
def list_models(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Each model, then its Volcengine spelling where Volcengine names it (a China-region
    client looks for its own id here), with ``byteplus_id`` saying which model it is."""
    data = []
    fleet = services.fleet.view()
    for entry in services.models:
        item = entry.to_json()
        item["modes"] = sorted(m.value for m in entry.modes & services.engine_modes(entry))
        item["max_keyframes"] = keyframe_limit(entry, services.engine_for(entry))
        # whether a running worker serves it (null: no worker running), and if not, why
        item["served"] = fleet.serves(entry.id)
        if item["served"] is False and entry.id in fleet.unavailable:
            item["unavailable_reason"] = fleet.unavailable[entry.id]
        data.append(item)
        spelling = services.models.volcengine_spelling(entry)
        if spelling is not None:
            data.append({**item, "id": spelling, "byteplus_id": entry.id})
    return {"object": "list", "data": data}
