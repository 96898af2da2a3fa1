"""Turn what a surface received into one validated ``GenerationRequest``.

Both surfaces come here, so every range and default is checked in one place.
Order of precedence for each setting: a body field (not null) wins over a text
command in the prompt, which wins over the model's default.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from segue.commands import parse_bool, parse_commands, parse_int
from segue.domain import (
    ADAPTIVE,
    DEFAULT_EXPIRES_AFTER,
    EXPIRES_AFTER_RANGE,
    FPS,
    RATIOS,
    RESOLUTIONS,
    SEED_MAX,
    GenerationRequest,
    ImageInput,
    Mode,
    ServiceTier,
    frames_for,
)
from segue.errors import InvalidParameter, MissingParameter
from segue.models import ModelEntry

DURATION_RANGE = {"ark": (2, 12), "pixazo": (3, 12)}
FRAMES_RANGE = (29, 289)


def detect_mode(images: Sequence[ImageInput]) -> Mode:
    """The Ark content rules: the three image modes are mutually exclusive."""
    roles = [i.role for i in images]
    if not images:
        return Mode.TEXT
    if len(images) == 1 and roles[0] in ("", "first_frame"):
        return Mode.FIRST_FRAME
    if sorted(roles) == ["first_frame", "last_frame"]:
        return Mode.FIRST_LAST
    if all(r == "reference_image" for r in roles) and len(images) <= 4:
        return Mode.REFERENCE
    raise InvalidParameter(
        "content",
        "images must be one first frame; exactly two with roles first_frame and last_frame; "
        f"or 1-4 with role reference_image (got roles {roles or 'none'}).",
    )


def check_mode(entry: ModelEntry, engine_modes: frozenset[Mode], mode: Mode) -> None:
    if mode not in entry.modes:
        raise InvalidParameter(
            "model", f"model {entry.id} does not support {mode.label} generation."
        )
    if mode not in engine_modes:
        raise InvalidParameter(
            "model",
            f"model {entry.id} is served here by the {entry.engine} engine, which does not "
            f"support {mode.label} generation.",
        )


def check_audio(entry: ModelEntry, makes_audio: bool, request: GenerationRequest) -> None:
    """Sound is asked of an engine that makes it, or refused before the task is stored."""
    if request.generate_audio and not makes_audio:
        raise InvalidParameter(
            "generate_audio",
            f"model {entry.id} is served here by the {entry.engine} engine, which makes no "
            "sound; set generate_audio to false or choose a model with audio.",
        )


class _Settings:
    """The settings of one request: body fields over text commands over defaults.

    Errors name the setting as the client spelled it (``--dur`` or ``duration``).
    """

    def __init__(self, fields: Mapping[str, object], commands: dict[str, object],
                 flags: dict[str, str]) -> None:
        self._fields = {k: v for k, v in fields.items() if v is not None}
        self._values = {**commands, **self._fields}
        self._flags = flags

    def name(self, setting: str) -> str:
        return setting if setting in self._fields else self._flags.get(setting, setting)

    def has(self, setting: str) -> bool:
        return setting in self._values

    def choice(self, setting: str, default: str, allowed: Sequence[str]) -> str:
        value = self._values.get(setting, default)
        if value not in allowed:
            raise InvalidParameter(self.name(setting), f"must be one of {', '.join(allowed)}.")
        return str(value)

    def int(self, setting: str, default: int, low: int, high: int) -> int:
        value = parse_int(self.name(setting), self._values.get(setting, default))
        if not low <= value <= high:
            raise InvalidParameter(self.name(setting), f"must be between {low} and {high}, "
                                                       f"got {value}.")
        return value

    def bool(self, setting: str) -> bool:
        return parse_bool(self.name(setting), self._values.get(setting, False))

    def invalid(self, setting: str, detail: str) -> InvalidParameter:
        return InvalidParameter(self.name(setting), detail)


def build_request(
    entry: ModelEntry,
    *,
    model: str,
    text: str | None,
    images: Sequence[ImageInput],
    fields: Mapping[str, object],
    surface: str,
) -> GenerationRequest:
    """Validate one create request; ``fields`` holds the surface's top-level settings."""
    mode = detect_mode(images)
    prompt, commands, flags = parse_commands(text or "")
    if mode is Mode.TEXT and not prompt:
        raise MissingParameter("text")
    given = _Settings(fields, commands, flags)
    image_mode = mode in (Mode.FIRST_FRAME, Mode.FIRST_LAST)

    resolution = given.choice("resolution", entry.resolution, RESOLUTIONS)
    if mode is Mode.REFERENCE and resolution == "1080p":
        raise given.invalid("resolution", "1080p is not available in reference-image mode.")
    ratio = given.choice("ratio", ADAPTIVE if image_mode else "16:9", (*RATIOS, ADAPTIVE))
    if ratio == ADAPTIVE and not image_mode:
        raise given.invalid("ratio", "adaptive follows the first frame and needs one.")

    duration: int | None = None
    if given.has("frames"):
        frames = given.int("frames", 0, *FRAMES_RANGE)
        if (frames - 25) % 4:
            raise given.invalid("frames", f"must be 25 + 4n, got {frames}.")
    else:
        duration = given.int("duration", 5, *DURATION_RANGE[surface])
        frames = frames_for(duration)
    given.int("framespersecond", FPS, FPS, FPS)

    seed = given.int("seed", -1, -1, SEED_MAX)
    camera_fixed = given.bool("camerafixed")
    if camera_fixed and mode is Mode.REFERENCE:
        raise given.invalid("camerafixed", "is not available in reference-image mode.")
    callback_url = fields.get("callback_url")
    if callback_url is not None and not str(callback_url).lower().startswith(
            ("http://", "https://")):
        raise given.invalid("callback_url", "must be an http or https URL.")

    return GenerationRequest(
        model=model, prompt=prompt, mode=mode, images=tuple(images),
        resolution=resolution, ratio=ratio, duration=duration, frames=frames,
        seed=secrets.randbelow(SEED_MAX + 1) if seed == -1 else seed,
        camera_fixed=camera_fixed, watermark=given.bool("watermark"),
        return_last_frame=given.bool("return_last_frame"),
        generate_audio=given.bool("generate_audio"),
        service_tier=ServiceTier(given.choice(
            "service_tier", ServiceTier.DEFAULT.value, [t.value for t in ServiceTier])),
        execution_expires_after=given.int(
            "execution_expires_after", DEFAULT_EXPIRES_AFTER, *EXPIRES_AFTER_RANGE),
        callback_url=str(callback_url) if callback_url is not None else None,
    )
