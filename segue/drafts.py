"""Draft -> final: a final video rendered from a succeeded draft's inputs, seed and length.

A create whose content is ``{"type": "draft_task", "draft_task": {"id": ...}}`` comes here
instead of ``build_request``. The draft task must belong to the same key (the caller looked
it up with the key, so another key's draft is already a 404), be a draft of the same model,
have succeeded, and be at most ``DRAFT_TTL`` old. The final takes the draft's prompt,
images, ratio, seed and length; the request may add its resolution and the settings of
``delivery_settings``, and may repeat the draft's own settings but not contradict them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from segue.domain import GenerationRequest, TaskStatus
from segue.errors import BadRequest, InvalidParameter
from segue.models import ModelEntry, volcengine_id
from segue.requests import GivenSettings, delivery_settings
from segue.tasks.schema import TaskRow

DRAFT_TTL = 7 * 86_400
PARAM = "content.draft_task.id"


def _same_model(draft_model: str, entry: ModelEntry) -> bool:
    """Either spelling of the final's model (the draft's task keeps the id it was sent)."""
    return draft_model in (entry.id, volcengine_id(entry.id))


def check_draft(draft: TaskRow, request: dict[str, Any], entry: ModelEntry, model: str,
                now: float) -> GenerationRequest:
    """The draft's ``request`` (``TaskStore.full_request``), once the draft is shown fit to be
    turned into a final."""
    source = GenerationRequest.from_json(request)
    if not source.draft:
        raise InvalidParameter(PARAM, f"task {draft.id} is not a draft (it was not created "
                                      "with draft: true).")
    if not _same_model(draft.model, entry):
        raise InvalidParameter("model", f"the draft {draft.id} was made with {draft.model}; "
                                        f"its final must use the same model, not {model}.")
    if draft.status != TaskStatus.SUCCEEDED.value:
        raise BadRequest(f"The draft task {draft.id} is {draft.status}; only a succeeded "
                         "draft can be turned into a final video.",
                         code="OperationDenied.DraftTaskStatus", param=PARAM)
    if now - draft.created_at > DRAFT_TTL:
        raise BadRequest(f"The draft task {draft.id} is more than 7 days old; drafts can be "
                         "turned into a final video for 7 days.",
                         code="OperationDenied.DraftTaskExpired", param=PARAM)
    return source


def final_request(entry: ModelEntry, model: str, draft: TaskRow, request: dict[str, Any],
                  fields: Mapping[str, object], now: float) -> GenerationRequest:
    source = check_draft(draft, request, entry, model, now)
    given = GivenSettings(fields, {}, {})
    kept: dict[str, object] = {
        "seed": draft.seed, "ratio": draft.ratio, "camerafixed": source.camera_fixed,
        "frames": draft.frames,
        "duration": -1 if source.auto_duration else draft.duration,
    }
    for name, value in kept.items():
        repeated = given.get(name) in (value, getattr(source, name, value))
        if given.has(name) and not repeated:
            raise given.invalid(name, f"the draft {draft.id} was made with {value}; a final "
                                      "keeps the draft's inputs, seed and length.")
    if given.bool("draft"):
        raise given.invalid("draft", "a final made from a draft is not a draft itself.")
    # the length was fixed when the draft was made: the final's engine does not choose again
    return replace(
        source, model=model, draft=False, draft_task_id=draft.id, ratio=draft.ratio,
        auto_duration=False,
        duration=draft.duration, frames=draft.frames,
        resolution=given.choice("resolution", entry.resolution, entry.resolutions),
        **delivery_settings(entry, given),
    )
