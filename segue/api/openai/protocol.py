"""Wire models of ``/v1/videos``, with OpenAI's names and OpenRouter's ``frame_images``.

The first frame comes as ``input_reference`` (an upload, an ``image_url`` object or a
URL string) or as a ``frame_images`` item with ``frame_type: "first_frame"``; the last
frame only as ``frame_images`` with ``frame_type: "last_frame"``. JSON null means absent.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from segue.api.ark.protocol import ImageURL
from segue.api.wire import JsonBool
from segue.domain import KEYFRAME, ImageInput, size_problem
from segue.errors import InvalidParameter, MissingParameter
from segue.models import ModelEntry

DOCUMENTED_SECONDS = (4, 8, 12)
MAX_KEYFRAMES = 64  # a bound on the body; the model's own limit is checked with the rules
_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")


# an image_url is {"url": ...} or, as OpenRouter also accepts, the URL string itself
_IMAGE_URL_SCHEMA = {"anyOf": [
    {"type": "string"},
    {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}]}


def _url_object(value: Any) -> Any:
    return {"url": value} if isinstance(value, str) else value


class ReferenceImage(BaseModel):
    """One ``input_references`` item: a reference image (not a frame of the video)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["image_url"] = "image_url"
    image_url: Annotated[ImageURL, WithJsonSchema(_IMAGE_URL_SCHEMA)]

    @field_validator("image_url", mode="before")
    @classmethod
    def _plain_string(cls, value: Any) -> Any:
        return _url_object(value)


class FrameImage(ReferenceImage):
    """One ``frame_images`` item (OpenRouter's convention; ``keyframe`` with its ``time`` in
    seconds is Segue's own, a storyboard's frame between the ends)."""

    frame_type: Literal["first_frame", "last_frame", "keyframe"]
    time: float | None = Field(default=None, allow_inf_nan=False, description=(
        "For frame_type keyframe only: seconds from the start; the keyframe is output frame "
        "round(time × 24)."))


class CreateVideoRequest(BaseModel):
    """``POST /v1/videos`` as JSON, or as multipart form fields (an upload becomes a data URL)."""

    model_config = ConfigDict(extra="ignore")
    prompt: str = Field(min_length=1)
    model: str | None = Field(default=None, min_length=1)
    seconds: str | int | None = None
    size: str | None = None
    input_reference: str | dict[str, Any] | None = None
    # the two ends and the keyframes between them (each model says how many it takes)
    frame_images: list[FrameImage] | None = Field(default=None, max_length=2 + MAX_KEYFRAMES)
    input_references: list[ReferenceImage] | None = Field(default=None, max_length=4)
    # Segue's own, as on the other surfaces
    callback_url: str | None = None
    seed: int | None = None
    watermark: JsonBool | None = None
    generate_audio: JsonBool | None = None

    def first_reference(self) -> str | None:
        """The URL ``input_reference`` names: a string, ``{"image_url": ...}`` or refused."""
        ref = self.input_reference
        if ref is None or isinstance(ref, str):
            return ref or None
        if "file_id" in ref and "image_url" not in ref:
            raise InvalidParameter("input_reference", "file ids are not kept here; upload the "
                                                      "image or give an image_url.")
        url = _url_object(ref.get("image_url"))
        if not isinstance(url, dict) or not isinstance(url.get("url"), str) or not url["url"]:
            raise InvalidParameter("input_reference", "give a file, an image URL, or "
                                                      '{"image_url": "<url>"}.')
        return str(url["url"])

    def images(self) -> list[ImageInput]:
        """First and last frames, or reference images, in the roles the requests module knows."""
        frames: dict[str, str] = {}
        first = self.first_reference()
        if first:
            frames["first_frame"] = first
        keyframes = self._keyframes()
        for index, item in enumerate(self.frame_images or ()):
            if item.frame_type == KEYFRAME:
                continue
            if item.frame_type in frames:
                raise InvalidParameter(f"frame_images[{index}]", f"the {item.frame_type} is "
                                       "given twice (input_reference is the first frame too).")
            frames[item.frame_type] = item.image_url.url
        if "last_frame" in frames and "first_frame" not in frames:
            raise InvalidParameter("frame_images", "a last_frame needs a first_frame (or an "
                                                   "input_reference) too.")
        references = [ImageInput(r.image_url.url, "reference_image")
                      for r in self.input_references or ()]
        if references and frames:
            raise InvalidParameter("input_references", "reference images cannot be combined "
                                                       "with frame images.")
        if references and keyframes:
            raise InvalidParameter("input_references", "reference images cannot be combined "
                                                       "with keyframes.")
        return references or [*(ImageInput(url, role) for role, url in sorted(frames.items())),
                              *keyframes]

    def _keyframes(self) -> list[ImageInput]:
        """The ``keyframe`` items, each with its time (none of the ends takes one)."""
        keyframes = []
        for index, item in enumerate(self.frame_images or ()):
            if item.frame_type != KEYFRAME and item.time is not None:
                raise InvalidParameter(f"frame_images[{index}].time", (
                    "only a keyframe takes a time. (A form matches the items' fields by "
                    "their order: list the keyframes before the ends.)"))
            if item.frame_type == KEYFRAME:
                if item.time is None:
                    raise MissingParameter(f"frame_images[{index}].time")
                keyframes.append(ImageInput(item.image_url.url, KEYFRAME, item.time))
        return keyframes

    def dimensions(self) -> tuple[int, int] | None:
        """``size`` as (width, height), checked against what the encoder can render."""
        if self.size is None:
            return None
        match = _SIZE.match(self.size)
        if match is None:
            raise InvalidParameter("size", f"must be WIDTHxHEIGHT such as 1280x720, got "
                                           f"{self.size!r}.")
        width, height = int(match[1]), int(match[2])
        problem = size_problem(width, height)
        if problem:
            raise InvalidParameter("size", problem)
        return width, height

    def duration(self, entry: ModelEntry) -> int:
        """``seconds`` as a whole number the model's range allows (4 when absent, as OpenAI)."""
        low, high = entry.min_duration, entry.max_duration
        if self.seconds is None:
            return DOCUMENTED_SECONDS[0] if low <= DOCUMENTED_SECONDS[0] <= high else (
                entry.default_duration)
        text = str(self.seconds).strip()
        if not text.isdigit():
            raise InvalidParameter("seconds", f'must be a whole number of seconds such as "4", '
                                              f"got {self.seconds!r}.")
        if not low <= int(text) <= high:
            raise InvalidParameter("seconds", f"model {entry.name} makes videos of {low} to "
                                              f"{high} seconds, got {text}.")
        return int(text)

    def fields(self, seconds: int) -> dict[str, object]:
        """The settings ``requests.build_request`` reads, in its names."""
        return {"duration": seconds, "seed": self.seed, "watermark": self.watermark,
                "callback_url": self.callback_url, "generate_audio": self.generate_audio}


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    """The video object (``tasks.videos.video_object`` builds it)."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    created_at: int
    completed_at: int | None
    expires_at: int | None
    prompt: str | None
    seconds: str
    size: str
    remixed_from_video_id: str | None = None
    error: VideoError | None


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedVideo(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool


class Model(BaseModel):
    """OpenAI's model object, as ``client.models.list()`` and ``retrieve()`` read it."""

    id: str
    object: Literal["model"] = "model"
    created: int  # the date in the id's YYMMDD suffix (00:00 UTC); 0 where the id has none
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its ``$defs`` references replaced by their content, so that it
    stands alone inside the OpenAPI document (which has no ``$defs`` of its own)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


# the fields a form gives as text that the JSON body gives as booleans
FORM_BOOLEANS = frozenset({"watermark", "generate_audio"})
_CREATE_SCHEMA = CreateVideoRequest.model_json_schema()
# The request body as the OpenAPI document states it: JSON, or the same as multipart.
CREATE_BODY: dict[str, Any] = {"required": True, "content": {
    "application/json": {"schema": _inline(_CREATE_SCHEMA, _CREATE_SCHEMA.get("$defs", {}))},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["prompt"],
        "properties": {"prompt": {"type": "string", "minLength": 1},
                       "model": {"type": "string", "minLength": 1},
                       "watermark": {"enum": ["true", "false"]},
                       "generate_audio": {"enum": ["true", "false"]},
                       "seconds": {"type": "string"}, "size": {"type": "string"},
                       "input_reference": {"type": "string", "format": "binary"}},
        "description": "As the JSON body; nested fields flattened as frame_images[][frame_type]."
    }}}}
