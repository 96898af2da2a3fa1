"""Ark wire models, with the vendor's exact names. JSON null means absent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from segue.api.openapi import EXPIRES, SEED
from segue.domain import ImageInput
from segue.errors import InvalidParameter


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str


class ContentItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageURL | None = None
    role: Literal["first_frame", "last_frame", "reference_image"] | None = None

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
    return_last_frame: bool | None = None
    service_tier: str | None = None
    execution_expires_after: int | None = Field(default=None, json_schema_extra=EXPIRES)
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    frames: int | None = None
    framespersecond: int | None = None
    seed: int | None = Field(default=None, json_schema_extra=SEED)
    camera_fixed: bool | None = None
    camerafixed: bool | None = None
    watermark: bool | None = None
    generate_audio: bool | None = None

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
            images.append(ImageInput(url=item.image_url.url, role=item.role or ""))
        return images

    def settings(self) -> dict[str, object]:
        fields = self.model_dump(exclude={"model", "content", "camera_fixed", "camerafixed"})
        fields["camerafixed"] = self.camera_fixed if self.camera_fixed is not None else (
            self.camerafixed)
        return fields


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
