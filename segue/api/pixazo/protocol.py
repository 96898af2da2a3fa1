"""Pixazo gateway wire models, with the gateway's exact names (``framepersecond``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from segue.api.ark.protocol import ContentItem
from segue.api.openapi import EXPIRES, SEED
from segue.api.wire import JsonBool
from segue.domain import KEYFRAME, ImageInput


class _Settings(BaseModel):
    model_config = ConfigDict(extra="ignore")
    callback_url: str | None = None
    resolution: str | None = None
    ratio: str | None = None  # Segue extension: Ark's ratio
    duration: int | None = None
    framepersecond: int | None = None
    watermark: JsonBool | None = None
    seed: int | None = Field(default=None, json_schema_extra=SEED)
    camerafixed: JsonBool | None = None
    return_last_frame: JsonBool | None = None  # Segue extension
    service_tier: str | None = None  # Segue extension
    # Segue extension
    execution_expires_after: int | None = Field(default=None, json_schema_extra=EXPIRES)
    # the Ark fields added with Seedance 1.5 and 2.x
    generate_audio: JsonBool | None = None
    draft: JsonBool | None = None
    priority: int | None = None
    safety_identifier: str | None = None
    output_format: str | None = None

    def settings(self) -> dict[str, object]:
        fields = self.model_dump(include=set(_Settings.model_fields))
        fields["framespersecond"] = fields.pop("framepersecond")
        return fields


class Keyframe(BaseModel):
    """A storyboard frame between the ends: an image URL and where it goes, in seconds."""

    model_config = ConfigDict(extra="ignore")
    image: str = Field(min_length=1)
    time: float = Field(allow_inf_nan=False, description=(
        "Seconds from the start; the keyframe is output frame round(time × 24)."))


class Frame2VideoRequest(_Settings):
    model: str = Field(min_length=1)
    text: str = Field(min_length=1)
    first_frame: str = Field(min_length=1)
    last_frame: str = Field(min_length=1)
    keyframes: list[Keyframe] | None = Field(default=None, description=(
        "Segue extension: a storyboard's frames between first_frame and last_frame."))

    def images(self) -> list[ImageInput]:
        return [ImageInput(self.first_frame, "first_frame"),
                *(ImageInput(k.image, KEYFRAME, k.time) for k in self.keyframes or ()),
                ImageInput(self.last_frame, "last_frame")]


class Image2VideoRequest(_Settings):
    model: str = Field(min_length=1)
    content: list[ContentItem] = Field(min_length=1)


class TextToVideoRequest(_Settings):
    model: str = Field(min_length=1)
    text: str = Field(min_length=1)


class VideoResultRequest(BaseModel):
    task_id: str = Field(min_length=1)
