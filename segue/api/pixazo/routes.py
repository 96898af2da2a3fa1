"""The Pixazo gateway routes of the seed document, on the same tasks as the Ark API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter

from segue.api.ark.protocol import CreateTaskRequest, CreateTaskResponse
from segue.api.deps import (
    BodyHashDep,
    CreateSlots,
    IdempotencyKey,
    PrincipalDep,
    ServicesDep,
    read,
    run_create,
)
from segue.api.openapi import AUTH, CREATE, PixazoError, errors
from segue.api.pixazo.protocol import (
    Frame2VideoRequest,
    Image2VideoRequest,
    TextToVideoRequest,
    VideoResultRequest,
)
from segue.api.polls import TaskJSON
from segue.domain import ImageInput, MediaInput
from segue.keys import Principal
from segue.services import Services
from segue.tasks.view import task_object

router = APIRouter(tags=["Pixazo gateway"], responses=errors(PixazoError, *AUTH))
CREATED: dict[str, Any] = {"response_model": CreateTaskResponse,
                           "responses": errors(PixazoError, *CREATE)}


def _create(
    services: Services, principal: Principal, *, model: str, text: str,
    images: Sequence[ImageInput], fields: dict[str, object], digest: str,
    idempotency_key: str | None, media: Sequence[MediaInput] = (), draft_id: str | None = None,
) -> dict[str, str]:
    request = services.prepare(principal, model=model, text=text, images=images, media=media,
                               draft_id=draft_id, fields=fields, surface="pixazo")
    row = services.create_task(principal, request, idempotency_key=idempotency_key,
                               request_hash=digest)
    return {"id": row.id}


@router.post("/byteplus/v1/generateFrame2VideoTask", **CREATED)
async def generate_frame_to_video(
    body: Frame2VideoRequest, services: ServicesDep, principal: PrincipalDep,
    digest: BodyHashDep, slots: CreateSlots, idempotency_key: IdempotencyKey = None,
) -> dict[str, str]:
    return await run_create(slots, _create, services, principal, model=body.model,
                            text=body.text, images=body.images(), fields=body.settings(),
                            digest=digest, idempotency_key=idempotency_key)


@router.post("/byteplus/v1/generateImage2VideoTask", **CREATED)
async def generate_image_to_video(
    body: Image2VideoRequest, services: ServicesDep, principal: PrincipalDep,
    digest: BodyHashDep, slots: CreateSlots, idempotency_key: IdempotencyKey = None,
) -> dict[str, str]:
    ark = CreateTaskRequest(model=body.model, content=body.content)
    return await run_create(slots, _create, services, principal, model=body.model,
                            text=ark.text(), images=ark.images(), media=ark.media(),
                            draft_id=ark.draft_task_id(), fields=body.settings(),
                            digest=digest, idempotency_key=idempotency_key)


@router.post("/byteplus/v1/generateVideoTask", **CREATED)
async def generate_video(
    body: TextToVideoRequest, services: ServicesDep, principal: PrincipalDep,
    digest: BodyHashDep, slots: CreateSlots, idempotency_key: IdempotencyKey = None,
) -> dict[str, str]:
    return await run_create(slots, _create, services, principal, model=body.model,
                            text=body.text, images=(), fields=body.settings(),
                            digest=digest, idempotency_key=idempotency_key)


@router.post("/bytedance-polling/getVideoResult", response_model=dict[str, Any],
             responses=errors(PixazoError, 400, 404))
async def get_video_result(
    body: VideoResultRequest, services: ServicesDep, principal: PrincipalDep
) -> TaskJSON:
    # A ready response: FastAPI's serializer would take a third of the poll's time to
    # re-check a dict that is JSON already (the GET polls are served by ``api/polls.py``;
    # this one has a body, which FastAPI keeps checking).
    row = await read(services.tasks, services.tasks.get, body.task_id, principal.key_id)
    return TaskJSON(task_object(row, services.objects))
