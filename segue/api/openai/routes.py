"""``/v1/videos``: the OpenAI-style video API over the same tasks as the Ark and Pixazo routes."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import ValidationError

from segue.api.deps import (
    CreateSlots,
    IdempotencyKey,
    PrincipalDep,
    ServicesDep,
    read,
    run_create,
)
from segue.api.openai import catalog
from segue.api.openai.errors import ERRORS, ErrorEnvelope
from segue.api.openai.forms import read_body
from segue.api.openai.protocol import (
    CREATE_BODY,
    FORM_BOOLEANS,
    CreateVideoRequest,
    DeletedVideo,
    Video,
    VideoList,
)
from segue.api.polls import poll
from segue.domain import KEYFRAME, Mode, TaskStatus, nearest_ratio, resolution_for
from segue.errors import InvalidParameter, NotFound, OperationDenied
from segue.keyframes import keyframe_limit
from segue.keys import Principal
from segue.media.previews import spritesheet, thumbnail
from segue.models import ModelEntry
from segue.requests import detect_mode
from segue.services import Services
from segue.storage.base import local_file
from segue.storage.local import LocalStore
from segue.tasks.videos import video_object

router = APIRouter(prefix="/v1", tags=["OpenAI-style videos"])
router.include_router(catalog.router)  # first: /videos/models is no /videos/{video_id}
LIST_WINDOW = 7 * 86_400


@router.post("/videos", response_model=Video, openapi_extra={"requestBody": CREATE_BODY},
             responses={**ERRORS, 413: {"model": ErrorEnvelope,
                                        "description": "The body is over the size limit."}})
async def create_video(request: Request, services: ServicesDep, principal: PrincipalDep,
                       slots: CreateSlots, idempotency_key: IdempotencyKey = None
                       ) -> dict[str, Any]:
    """Queue a video: a prompt, and a first frame, a first and a last frame, or neither."""
    raw = await read_body(request, FORM_BOOLEANS)
    # hashed as parsed: a multipart body's boundary changes on every retry of the same request
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()
    try:
        body = CreateVideoRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    return await run_create(slots, _create, services, principal, body, digest, idempotency_key)


def _create(services: Services, principal: Principal, body: CreateVideoRequest, digest: str,
            idempotency_key: str | None) -> dict[str, Any]:
    images = body.images()
    size = body.dimensions()
    keyframes = sum(i.role == KEYFRAME for i in images)
    entry = (services.models.get(body.model) if body.model
             else _default_model(services, detect_mode(images, surface="openai"), keyframes))
    # checked first: a size the model cannot render is the answer, whatever else is wrong
    exact = (*size, _check_size(services, entry, *size)) if size is not None else None
    request = services.prepare(principal, model=body.model or entry.id, text=body.prompt,
                               images=images, fields=body.fields(body.duration(entry)),
                               surface="openai")
    if exact is not None:  # rendered exactly; the table size is what other surfaces report
        width, height, resolution = exact
        request = replace(request, width=width, height=height, resolution=resolution,
                          ratio=nearest_ratio(width / height))
    row = services.create_task(principal, request, idempotency_key=idempotency_key,
                               request_hash=digest)
    return video_object(row)


def _check_size(services: Services, entry: ModelEntry, width: int, height: int) -> str:
    """The table resolution ``width``x``height`` counts as, if the model and its engine can
    render that size. An engine whose network works on blocks declares ``size_multiple``
    (LTX-Video 32, Wan 16); the others take any even size."""
    resolution = resolution_for(width, height)
    if resolution not in entry.resolutions:
        raise InvalidParameter("size", f"model {entry.name} renders at "
                                       f"{', '.join(entry.resolutions)}; {width}x{height} is "
                                       f"a {resolution} size.")
    multiple = catalog.size_multiple(services, entry)
    if width % multiple or height % multiple:
        raise InvalidParameter("size", f"model {entry.name} is rendered here by an engine whose "
                                       f"sides are multiples of {multiple} px; {width}x{height} "
                                       "is not.")
    return resolution


def _default_model(services: Services, mode: Mode, keyframes: int = 0) -> ModelEntry:
    """Without ``model``: the first model of the registry that renders this mode here (and
    takes that many keyframes)."""
    for entry in services.models:
        if mode in entry.modes & services.engine_modes(entry) and (
                not keyframes or keyframe_limit(entry, services.engine_for(entry)) >= keyframes):
            return entry
    raise InvalidParameter("model", f"no model here offers {mode.label} generation.")


@router.get("/videos", response_model=VideoList, responses=ERRORS)
def list_videos(
    services: ServicesDep, principal: PrincipalDep,
    after: Annotated[str | None, Query(min_length=1)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20, order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    """The key's videos of the last 7 days, made on any surface; ``after`` is a video id."""
    try:
        rows, more = services.tasks.list_after(
            principal.key_id, after=after, limit=limit, newest_first=order == "desc",
            since=time.time() - LIST_WINDOW)
    except NotFound:
        raise InvalidParameter("after", f"no video {after} is listed for this key.") from None
    data = [video_object(r) for r in rows]
    return {"object": "list", "data": data, "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


@poll(router, "/videos/{video_id}", response_model=Video, responses=ERRORS)
async def retrieve_video(video_id: str, services: ServicesDep, principal: PrincipalDep
                         ) -> dict[str, Any]:
    return video_object(await read(services.tasks, services.tasks.get, video_id,
                                   principal.key_id))


@router.delete("/videos/{video_id}", response_model=DeletedVideo, responses=ERRORS)
def delete_video(video_id: str, services: ServicesDep, principal: PrincipalDep
                 ) -> dict[str, Any]:
    """Delete a finished video with its files, or cancel a queued one (``deleted: false``:
    it shows ``failed`` with ``TaskCancelled`` for a day). A rendering video cannot be."""
    action, _ = services.delete_task(video_id, principal.key_id)
    return {"id": video_id, "object": "video.deleted", "deleted": action == "delete"}


CONTENT_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}


@router.get("/videos/{video_id}/content", response_class=Response,
            responses={**ERRORS, 200: {"description": "The bytes.", "content": {
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in CONTENT_TYPES.values()}}})
def download_video_content(
    video_id: str, services: ServicesDep, principal: PrincipalDep,
    variant: Literal["video", "thumbnail", "spritesheet"] = "video",
) -> Response:
    """The MP4, its first frame as WebP (``thumbnail``), or a grid of frames as JPEG."""
    row = services.tasks.get(video_id, principal.key_id)
    if row.status != TaskStatus.SUCCEEDED:
        raise OperationDenied(f"The video {video_id} is {video_object(row)['status']}; its "
                              "content exists once it is completed.", param="video_id")
    if not row.video_key or not row.links_expire_at or row.links_expire_at < time.time():
        raise NotFound(f"The files of video {video_id} have expired.", param="video_id")
    objects, key = services.objects, row.video_key
    headers = {"Cache-Control": "private, max-age=3600"}
    if variant == "video":
        if isinstance(objects, LocalStore):
            return FileResponse(objects.path(key), media_type="video/mp4", headers=headers)
        return RedirectResponse(objects.url(key, int(row.links_expire_at)), status_code=302)
    with local_file(objects, key) as path:
        data = thumbnail(path) if variant == "thumbnail" else spritesheet(path)
    return Response(data, media_type=CONTENT_TYPES[variant], headers=headers)
