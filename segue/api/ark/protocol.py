"""Ark wire models, with the vendor's exact names. JSON null means absent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from segue.api.openapi import EXPIRES, SEED
from segue.api.wire import JsonBool
from segue.domain import KEYFRAME, ImageInput, MediaInput
from segue.errors import InvalidParameter, MissingParameter


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str


class DraftTask(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)


def _names(kind: str) -> dict[str, Any]:
    """An item of this type carries the field of that name, not null (JSON Schema's if/then,
    which OpenAPI 3.1 has): the document then refuses what ``images()`` refuses."""
    return {"if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": {"required": [kind], "properties": {kind: {"not": {"type": "null"}}}}}


class ContentItem(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={
        "allOf": [_names("image_url"), _names("draft_task")]})
    type: Literal["text", "image_url", "video_url", "audio_url", "draft_task"]
    text: str | None = None
    image_url: ImageURL | None = None
    video_url: ImageURL | None = None
    audio_url: ImageURL | None = None
    draft_task: DraftTask | None = None
    role: Literal["first_frame", "last_frame", "reference_image", "reference_video",
                  "reference_audio", "keyframe"] | None = None
    # Segue's own: where a keyframe image goes, in seconds from the start
    time: float | None = Field(default=None, allow_inf_nan=False, description=(
        "Segue's own, for role keyframe only: seconds from the start; the keyframe is output "
        "frame round(time × 24), between the first and the last frame."))

    @field_validator("image_url", mode="before")
    @classmethod
    def _plain_string(cls, value: Any) -> Any:
        # The Pixazo image-to-video route sends image_url as a plain string.
        return {"url": value} if isinstance(value, str) else value


class CreateTaskRequest(BaseModel):
    """``POST /api/v3/contents/generations/tasks``; unknown keys are ignored, as upstream."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1)
    content: list[ContentItem] = Field(min_length=1)
    callback_url: str | None = None
    return_last_frame: JsonBool | None = None
    service_tier: str | None = None
    execution_expires_after: int | None = Field(default=None, json_schema_extra=EXPIRES)
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    frames: int | None = None
    framespersecond: int | None = None
    seed: int | None = Field(default=None, json_schema_extra=SEED)
    camera_fixed: JsonBool | None = None
    camerafixed: JsonBool | None = None
    watermark: JsonBool | None = None
    safety_identifier: str | None = None
    priority: int | None = None
    generate_audio: JsonBool | None = None
    draft: JsonBool | None = None
    output_format: str | None = None
    omni_reference_task_type: str | None = None

    def text(self) -> str:
        return " ".join(i.text for i in self.content if i.type == "text" and i.text)

    def images(self) -> list[ImageInput]:
        images = []
        for index, item in enumerate(self.content):
            if item.type != "image_url":
                continue
            if item.image_url is None or not item.image_url.url:
                raise InvalidParameter(f"content[{index}].image_url", "the image URL is empty.",
                                       code="InvalidImageURL.EmptyURL")
            if item.role in _MEDIA_ROLE.values():
                raise InvalidParameter(f"content[{index}].role",
                                       f"{item.role} is for video_url or audio_url items.")
            images.append(ImageInput(url=item.image_url.url, role=item.role or "",
                                     time=_time(index, item)))
        return images

    def media(self) -> list[MediaInput]:
        """Reference videos and audio (Seedance 2.x); the role defaults to the item's kind."""
        media = []
        for index, item in enumerate(self.content):
            role = _MEDIA_ROLE.get(item.type)
            if role is None:
                continue
            link = item.video_url if item.type == "video_url" else item.audio_url
            if link is None or not link.url:
                raise InvalidParameter(f"content[{index}].{item.type}", "the URL is empty.")
            if not link.url.lower().startswith(("http://", "https://", "data:")):
                raise InvalidParameter(f"content[{index}].{item.type}",
                                       "must be an http, https or data URL.")
            if item.role not in (None, role):
                raise InvalidParameter(f"content[{index}].role",
                                       f"a {item.type} item takes the role {role}.")
            media.append(MediaInput(url=link.url, role=role))
        return media

    def draft_task_id(self) -> str | None:
        """The draft a final is made from; such an item stands alone in ``content``."""
        drafts = [i for i in self.content if i.type == "draft_task"]
        if not drafts:
            return None
        if len(self.content) > 1:
            raise InvalidParameter("content", "a draft_task item brings the draft's prompt and "
                                              "images; send it as the only content item.")
        if drafts[0].draft_task is None:
            raise InvalidParameter("content[0].draft_task", "needs the draft's task id.")
        return drafts[0].draft_task.id

    def settings(self) -> dict[str, object]:
        fields = self.model_dump(exclude={"model", "content", "camera_fixed", "camerafixed"})
        fields["camerafixed"] = self.camera_fixed if self.camera_fixed is not None else (
            self.camerafixed)
        return fields


_MEDIA_ROLE = {"video_url": "reference_video", "audio_url": "reference_audio"}


def _time(index: int, item: ContentItem) -> float | None:
    """A keyframe's time; no other image takes one."""
    if item.role == KEYFRAME and item.time is None:
        raise MissingParameter(f"content[{index}].time")
    if item.role != KEYFRAME and item.time is not None:
        raise InvalidParameter(f"content[{index}].time", "only an image with the role "
                                                         "keyframe takes a time.")
    return item.time


class CreateTaskResponse(BaseModel):
    id: str


class ListTasksResponse(BaseModel):
    total: int
    items: list[dict[str, Any]]


class EmptyObject(BaseModel):
    """``{}``: what DELETE answers."""


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[dict[str, Any]]
