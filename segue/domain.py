"""The words of the product: statuses, modes, sizes, requests. No I/O here."""

from __future__ import annotations

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


def frames_for(duration: int) -> int:
    return FPS * duration + 1


def tokens_for(width: int, height: int, frames: int) -> int:
    return width * height * frames // 1024


def new_task_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(5))
    return f"cgt-{now:%Y%m%d%H%M%S}-{suffix}"


@dataclass(frozen=True)
class ImageInput:
    url: str  # http(s) URL or data: URL
    role: str  # first_frame | last_frame | reference_image


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
    generate_audio: bool = False

    @property
    def fps(self) -> int:
        return FPS

    def image(self, role: str) -> ImageInput | None:
        return next((i for i in self.images if i.role == role), None)

    def with_ratio(self, ratio: str) -> GenerationRequest:
        return replace(self, ratio=ratio)

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model, "prompt": self.prompt, "mode": self.mode.value,
            "images": [{"url": i.url, "role": i.role} for i in self.images],
            "resolution": self.resolution, "ratio": self.ratio, "duration": self.duration,
            "frames": self.frames, "seed": self.seed, "camera_fixed": self.camera_fixed,
            "watermark": self.watermark, "return_last_frame": self.return_last_frame,
            "service_tier": self.service_tier.value,
            "execution_expires_after": self.execution_expires_after,
            "callback_url": self.callback_url, "extra": self.extra,
            "generate_audio": self.generate_audio,
        }

    @classmethod
    def from_json(cls, data: dict) -> GenerationRequest:
        data = dict(data)
        data["mode"] = Mode(data["mode"])
        data["images"] = tuple(ImageInput(**i) for i in data["images"])
        data["service_tier"] = ServiceTier(data["service_tier"])
        return cls(**data)
