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


def _range(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidParameter(name, f"must be between {low} and {high}, got {value}.")
    return value


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
    fields = {k: v for k, v in fields.items() if v is not None}
    given = {**commands, **fields}

    def name(setting: str) -> str:
        """How the client spelled a setting, so that errors name what it sent."""
        return setting if setting in fields else flags.get(setting, setting)

    resolution = str(given.get("resolution", entry.resolution))
    if resolution not in RESOLUTIONS:
        raise InvalidParameter(name("resolution"), f"must be one of {', '.join(RESOLUTIONS)}.")
    if mode is Mode.REFERENCE and resolution == "1080p":
        raise InvalidParameter(name("resolution"), "1080p is not available in reference-image mode.")

    default_ratio = ADAPTIVE if mode in (Mode.FIRST_FRAME, Mode.FIRST_LAST) else "16:9"
    ratio = str(given.get("ratio", default_ratio))
    if ratio not in (*RATIOS, ADAPTIVE):
        raise InvalidParameter(name("ratio"), f"must be one of {', '.join(RATIOS)} or adaptive.")
    if ratio == ADAPTIVE and mode not in (Mode.FIRST_FRAME, Mode.FIRST_LAST):
        raise InvalidParameter(name("ratio"), "adaptive follows the first frame and needs one.")

    duration: int | None
    if given.get("frames") is not None:
        frames = _range(name("frames"), parse_int(name("frames"), given["frames"]), *FRAMES_RANGE)
        if (frames - 25) % 4:
            raise InvalidParameter(name("frames"), f"must be 25 + 4n, got {frames}.")
        duration = None
    else:
        low, high = DURATION_RANGE[surface]
        duration = _range(name("duration"), parse_int(name("duration"), given.get("duration", 5)), low, high)
        frames = frames_for(duration)

    fps = parse_int(name("framespersecond"), given.get("framespersecond", FPS))
    if fps != FPS:
        raise InvalidParameter(name("framespersecond"), f"only {FPS} is supported, got {fps}.")

    seed = _range(name("seed"), parse_int(name("seed"), given.get("seed", -1)), -1, SEED_MAX)
    if seed == -1:
        seed = secrets.randbelow(SEED_MAX + 1)

    camera_fixed = parse_bool(name("camerafixed"), given.get("camerafixed", False))
    if camera_fixed and mode is Mode.REFERENCE:
        raise InvalidParameter(name("camerafixed"), "is not available in reference-image mode.")

    tier = str(given.get("service_tier", ServiceTier.DEFAULT.value))
    if tier not in (ServiceTier.DEFAULT.value, ServiceTier.FLEX.value):
        raise InvalidParameter(name("service_tier"), "must be default or flex.")
    expires = _range(
        "execution_expires_after",
        parse_int(name("execution_expires_after"), given.get("execution_expires_after",
                                                       DEFAULT_EXPIRES_AFTER)),
        *EXPIRES_AFTER_RANGE,
    )
    callback_url = given.get("callback_url")
    if callback_url is not None and (
        not isinstance(callback_url, str)
        or not callback_url.lower().startswith(("http://", "https://"))
    ):
        raise InvalidParameter("callback_url", "must be an http or https URL.")

    return GenerationRequest(
        model=model, prompt=prompt, mode=mode, images=tuple(images),
        resolution=resolution, ratio=ratio, duration=duration, frames=frames, seed=seed,
        camera_fixed=camera_fixed,
        watermark=parse_bool(name("watermark"), given.get("watermark", False)),
        return_last_frame=parse_bool(name("return_last_frame"), given.get("return_last_frame", False)),
        service_tier=ServiceTier(tier), execution_expires_after=expires,
        callback_url=callback_url,
    )
