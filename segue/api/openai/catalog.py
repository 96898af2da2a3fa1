"""The model lists of the ``/v1`` surface.

``/v1/models`` is what the ``openai`` client's ``client.models.list()`` and ``retrieve()``
read: OpenAI's shape, the models ``/v1/videos`` serves and nothing more. Each model's
frame types, sizes and durations are in Segue's own ``/v1/videos/models``.
"""

from __future__ import annotations

import calendar
import re
from typing import Any

from fastapi import APIRouter

from segue.api.deps import PrincipalDep, ServicesDep
from segue.api.openai.errors import ERRORS
from segue.api.openai.protocol import Model, ModelList
from segue.domain import KEYFRAME, MAX_PIXELS, SIDE_RANGE, SIZES, Mode
from segue.engines.base import makes_audio
from segue.keyframes import keyframe_limit
from segue.models import ModelEntry
from segue.services import Services

# no prefix: routes.router (prefix /v1) includes this one before its /videos/{video_id}
router = APIRouter()
OWNER = "segue"  # every model listed here is rendered by this server's engines
_DATE_SUFFIX = re.compile(r"-(\d{2})(\d{2})(\d{2})$")


def created_at(model_id: str) -> int:
    """When the model came out, as its id says (``...-260128`` is 2026-01-28); 0 if not."""
    match = _DATE_SUFFIX.search(model_id)
    if match is None:
        return 0
    year, month, day = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return 0
    return calendar.timegm((2000 + year, month, day, 0, 0, 0))


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created_at(model_id),
            "owned_by": OWNER}


@router.get("/models", response_model=ModelList, responses=ERRORS)
def list_models(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """The models ``/v1/videos`` serves, in OpenAI's list shape (``client.models.list()``)."""
    return {"object": "list", "data": [_model(e.id) for e in services.models]}


@router.get("/models/{model}", response_model=Model, responses=ERRORS)
def retrieve_model(model: str, services: ServicesDep, principal: PrincipalDep
                   ) -> dict[str, Any]:
    """One model, by any id ``/v1/videos`` accepts (its Volcengine spelling too)."""
    return _model(services.models.get(model).name)


@router.get("/videos/models", responses=ERRORS)
def list_video_models(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Each model with the frame types, sizes and durations it accepts here."""
    return {"object": "list", "data": [_capabilities(services, e) for e in services.models]}


def size_multiple(services: Services, entry: ModelEntry) -> int:
    """The block size the model's engine renders in (``size_multiple``); any even size else."""
    return int(getattr(services.engine_for(entry), "size_multiple", 2))


def _capabilities(services: Services, entry: ModelEntry) -> dict[str, Any]:
    modes = entry.modes & services.engine_modes(entry)
    frame_types = [name for name, needs in (("first_frame", {Mode.FIRST_FRAME, Mode.FIRST_LAST}),
                                            ("last_frame", {Mode.FIRST_LAST})) if modes & needs]
    largest = max(w * h for r in entry.resolutions for w, h in SIZES[r].values())
    keyframes = keyframe_limit(entry, services.engine_for(entry))
    if keyframes:
        frame_types.append(KEYFRAME)
    return {
        "id": entry.id, "object": "model", "engine": entry.engine,
        "frame_types": frame_types, "max_keyframes": keyframes,
        "text_to_video": Mode.TEXT in modes,
        "input_references": Mode.REFERENCE in modes,
        "audio": entry.audio and makes_audio(services.engine_for(entry)),
        "sizes": [f"{w}x{h}" for r in entry.resolutions for w, h in SIZES[r].values()],
        "size_rules": {"multiple_of": size_multiple(services, entry),
                       "min_side": SIDE_RANGE[0],
                       "max_side": SIDE_RANGE[1], "max_pixels": min(MAX_PIXELS, largest)},
        "seconds": [str(s) for s in range(entry.min_duration, entry.max_duration + 1)],
    }
