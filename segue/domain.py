"""The words of the product: statuses, modes, sizes, requests. No I/O here."""

from __future__ import annotations

import math
import secrets
import string
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

FPS = 24
DEFAULT_EXPIRES_AFTER = 172_800
EXPIRES_AFTER_RANGE = (3_600, 259_200)
SEED_MAX = 2**32 - 1


class TaskStatus(StrEnum):
    QUEUED = "queued"  # committed, waiting for a worker
    RUNNING = "running"  # claimed by a worker holding a lease
    CANCELLED = "cancelled"  # deleted by its owner while still queued
    SUCCEEDED = "succeeded"  # video (and last frame) stored
    FAILED = "failed"  # ended with error.code / error.message
    EXPIRED = "expired"  # still unfinished at created_at + execution_expires_after

    @property
    def final(self) -> bool:
        return self not in (TaskStatus.QUEUED, TaskStatus.RUNNING)


class Mode(StrEnum):
    TEXT = "text"  # text to video
    FIRST_FRAME = "first_frame"  # one image that starts the video
    FIRST_LAST = "first_last_frame"  # a first and a last frame
    REFERENCE = "reference"  # 1-4 reference images

    @property
    def label(self) -> str:
        return {
            Mode.TEXT: "text-to-video",
            Mode.FIRST_FRAME: "first-frame",
            Mode.FIRST_LAST: "first-and-last-frame",
            Mode.REFERENCE: "reference-image",
        }[self]


class ServiceTier(StrEnum):
    DEFAULT = "default"
    FLEX = "flex"


RESOLUTIONS = ("480p", "720p", "1080p")
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
ADAPTIVE = "adaptive"

# Seedance 1.0 output sizes (width, height); every value is a multiple of 16.
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "480p": {
        "16:9": (864, 480), "4:3": (736, 544), "1:1": (640, 640),
        "3:4": (544, 736), "9:16": (480, 864), "21:9": (960, 416),
    },
    "720p": {
        "16:9": (1248, 704), "4:3": (1120, 832), "1:1": (960, 960),
        "3:4": (832, 1120), "9:16": (704, 1248), "21:9": (1504, 640),
    },
    "1080p": {
        "16:9": (1920, 1088), "4:3": (1664, 1248), "1:1": (1440, 1440),
        "3:4": (1248, 1664), "9:16": (1088, 1920), "21:9": (2176, 928),
    },
}

_RATIO_VALUES = {r: int(r.split(":")[0]) / int(r.split(":")[1]) for r in RATIOS}


def nearest_ratio(aspect: float) -> str:
    """The table ratio nearest to an image's width/height (compared in log space)."""
    import math

    return min(RATIOS, key=lambda r: abs(math.log(_RATIO_VALUES[r] / aspect)))


def output_size(resolution: str, ratio: str) -> tuple[int, int]:
    return SIZES[resolution][ratio]


# Exact sizes (the OpenAI-style `size`): even sides, as H.264's 4:2:0 needs, no side shorter
# than SIDE_RANGE[0] or longer than the widest table size, no more pixels than 1080p 16:9.
SIDE_RANGE = (128, 2176)
MAX_PIXELS = 1920 * 1088


def size_problem(width: int, height: int) -> str | None:
    """Why ``width``x``height`` cannot be rendered, or None when it can."""
    low, high = SIDE_RANGE
    if width % 2 or height % 2:
        return f"both sides must be even, got {width}x{height}."
    if not (low <= width <= high and low <= height <= high):
        return f"each side must be between {low} and {high} px, got {width}x{height}."
    if width * height > MAX_PIXELS:
        return f"at most {MAX_PIXELS} pixels (1920x1088), got {width}x{height}."
    return None


def resolution_for(width: int, height: int) -> str:
    """The table resolution nearest in pixel count: what an exact size is reported as."""
    import math

    pixels = width * height
    return min(RESOLUTIONS, key=lambda r: abs(math.log(
        SIZES[r]["16:9"][0] * SIZES[r]["16:9"][1] / pixels)))


def frames_for(duration: int) -> int:
    return FPS * duration + 1


def tokens_for(width: int, height: int, frames: int) -> int:
    return width * height * frames // 1024


def new_task_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(5))
    return f"cgt-{now:%Y%m%d%H%M%S}-{suffix}"


KEYFRAME = "keyframe"  # the role of an image placed at a chosen time between the ends


def keyframe_index(time: float, fps: int = FPS) -> int:
    """The output frame a keyframe at ``time`` seconds lands on: round(time·fps), halves up."""
    return math.floor(time * fps + 0.5)


@dataclass(frozen=True)
class ImageInput:
    url: str  # http(s) URL or data: URL
    role: str  # first_frame | last_frame | reference_image | keyframe
    time: float | None = None  # seconds from the start: keyframes only

    @property
    def name(self) -> str:
        """How errors name the image: its role, a keyframe with its time (``keyframe@2.5s``)."""
        if self.role == KEYFRAME and self.time is not None:
            return f"{KEYFRAME}@{self.time:g}s"
        return self.role

    def to_json(self) -> dict[str, object]:
        item: dict[str, object] = {"url": self.url, "role": self.role}
        if self.time is not None:
            item["time"] = self.time
        return item


@dataclass(frozen=True)
class MediaInput:
    """A reference video or audio clip (Seedance 2.x content items)."""

    url: str
    role: str  # reference_video | reference_audio


@dataclass(frozen=True)
class GenerationRequest:
    """One validated request with every default resolved, whatever surface it came from."""

    model: str
    prompt: str  # text commands removed
    mode: Mode
    images: tuple[ImageInput, ...] = ()
    resolution: str = "720p"
    ratio: str = ADAPTIVE  # a table ratio, or adaptive until the first frame is seen
    duration: int | None = 5  # None when frames was given
    frames: int = 121
    seed: int = 0  # the seed actually used (-1 is resolved at create)
    camera_fixed: bool = False
    watermark: bool = False
    return_last_frame: bool = False
    service_tier: ServiceTier = ServiceTier.DEFAULT
    execution_expires_after: int = DEFAULT_EXPIRES_AFTER
    callback_url: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    media: tuple[MediaInput, ...] = ()  # reference videos and audio
    omni_reference_task_type: str | None = None
    # an exact output size (the OpenAI-style `size`); None: the table size of resolution/ratio
    width: int | None = None
    height: int | None = None
    surface: str = "ark"  # the API the task was created on: ark | pixazo | openai
    generate_audio: bool = False
    draft: bool = False  # a cheap 480p draft rendered with the engine's fastest settings
    draft_task_id: str | None = None  # the draft this final is rendered from
    auto_duration: bool = False  # duration -1: the engine chose ``duration``
    priority: int = 0  # higher is claimed first (see TaskStore.claim)
    safety_identifier: str | None = None
    output_format: str = "mp4"

    @property
    def fps(self) -> int:
        return FPS

    def image(self, role: str) -> ImageInput | None:
        return next((i for i in self.images if i.role == role), None)

    @property
    def keyframes(self) -> list[ImageInput]:
        """The keyframes between the ends, in time order."""
        return sorted((i for i in self.images if i.role == KEYFRAME),
                      key=lambda i: i.time or 0.0)

    def with_ratio(self, ratio: str) -> GenerationRequest:
        return replace(self, ratio=ratio)

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model, "prompt": self.prompt, "mode": self.mode.value,
            "images": [i.to_json() for i in self.images],
            "resolution": self.resolution, "ratio": self.ratio, "duration": self.duration,
            "frames": self.frames, "seed": self.seed, "camera_fixed": self.camera_fixed,
            "watermark": self.watermark, "return_last_frame": self.return_last_frame,
            "service_tier": self.service_tier.value,
            "execution_expires_after": self.execution_expires_after,
            "callback_url": self.callback_url, "extra": self.extra,
            "media": [{"url": m.url, "role": m.role} for m in self.media],
            "omni_reference_task_type": self.omni_reference_task_type,
            "generate_audio": self.generate_audio, "draft": self.draft,
            "draft_task_id": self.draft_task_id, "auto_duration": self.auto_duration,
            "priority": self.priority, "safety_identifier": self.safety_identifier,
            "output_format": self.output_format,
            "width": self.width, "height": self.height, "surface": self.surface,
            **self._keyframes_json(),
        }

    def _keyframes_json(self) -> dict[str, object]:
        """What the task object shows of the keyframes (kept with the task row, which leaves
        the images out): each time, its frame and its URL as given; a data URL is not
        repeated in every poll (it may be megabytes)."""
        if not self.keyframes:
            return {}
        return {"keyframes": [
            {"time": k.time, "frame": keyframe_index(k.time or 0.0, self.fps),
             "image_url": None if k.url.lower().startswith("data:") else k.url}
            for k in self.keyframes]}

    @classmethod
    def from_json(cls, data: dict) -> GenerationRequest:
        data = dict(data)
        data.pop("keyframes", None)  # the task object's summary; the images carry them
        data["mode"] = Mode(data["mode"])
        data["images"] = tuple(ImageInput(**i) for i in data["images"])
        data["media"] = tuple(MediaInput(**m) for m in data.get("media", ()))
        data["service_tier"] = ServiceTier(data["service_tier"])
        return cls(**data)
