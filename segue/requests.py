"""Turn what a surface received into one validated ``GenerationRequest``.

Both surfaces come here, so every range and default is checked in one place.
Order of precedence for each setting: a body field (not null) wins over a text
command in the prompt, which wins over the model's default.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from segue.commands import parse_bool, parse_commands, parse_int
from segue.domain import (
    ADAPTIVE,
    DEFAULT_EXPIRES_AFTER,
    EXPIRES_AFTER_RANGE,
    FPS,
    RATIOS,
    SEED_MAX,
    GenerationRequest,
    ImageInput,
    MediaInput,
    Mode,
    ServiceTier,
    frames_for,
)
from segue.engines.base import AUTO_SECONDS, Engine, auto_seconds, engine_inputs, makes_audio
from segue.errors import InvalidParameter, MissingParameter
from segue.keyframes import check_ends, check_keyframes
from segue.models import ModelEntry

# the surfaces' own lower bounds (the seed's Pixazo range is 3-12); others take the model's
DURATION_FLOOR = {"ark": 2, "pixazo": 3}
# A field a surface spells differently from the setting it carries, so errors use its name.
SPELLED = {"pixazo": {"framespersecond": "framepersecond"}}
FRAMES_RANGE = (29, 289)
PRIORITY_RANGE = (-100, 100)
SAFETY_IDENTIFIER_MAX = 128
# A prompt is stored with its task and echoed in every poll of it (a 20 MB one was), and no
# engine reads more than a few hundred words: this bounds it with room to spare. Counted with
# its text commands, as sent.
PROMPT_MAX_CHARS = 10_000
PROMPT_PARAM = {"ark": "content.text", "pixazo": "prompt", "openai": "prompt"}
MEDIA_ROLES = {"reference_video": "reference videos", "reference_audio": "audio references"}
OMNI_TYPES = ("auto", "reference", "edit", "extend")


def detect_mode(images: Sequence[ImageInput], max_references: int = 4,
                surface: str = "ark") -> Mode:
    """The Ark content rules: the three image modes are mutually exclusive. Keyframes go
    between a first and a last frame (``segue.keyframes``)."""
    images = check_ends(images, surface)
    roles = [i.role for i in images]
    if not images:
        return Mode.TEXT
    if len(images) == 1 and roles[0] in ("", "first_frame"):
        return Mode.FIRST_FRAME
    if sorted(roles) == ["first_frame", "last_frame"]:
        return Mode.FIRST_LAST
    if all(r == "reference_image" for r in roles) and len(images) <= max_references:
        return Mode.REFERENCE
    raise InvalidParameter(
        "content",
        "images must be one first frame; exactly two with roles first_frame and last_frame; "
        f"or 1-{max_references} with role reference_image (got roles {roles or 'none'}).",
    )


def check_mode(entry: ModelEntry, engine_modes: frozenset[Mode], mode: Mode) -> None:
    if mode not in entry.modes:
        raise InvalidParameter(
            "model", f"model {entry.name} does not support {mode.label} generation."
        )
    if mode not in engine_modes:
        raise InvalidParameter(
            "model",
            f"model {entry.name} is served here by the {entry.engine} engine, which does not "
            f"support {mode.label} generation.",
        )


def fit_to_engine(entry: ModelEntry, engine: Engine, request: GenerationRequest
                  ) -> GenerationRequest:
    """Refuse what the engine behind ``entry`` cannot do; resolve what it chooses.

    Media comes before modes so that a reference-video request is told about the videos,
    not about a mode the videos implied.
    """
    served = f"model {entry.name} is served here by the {entry.engine} engine, which"
    if request.keyframes and Mode.FIRST_LAST not in entry.modes:
        check_keyframes(entry, engine, request)  # said as the keyframes' rule, not the mode's
    for role, what in MEDIA_ROLES.items():
        if any(m.role == role for m in request.media) and role not in engine_inputs(engine):
            raise InvalidParameter("content", f"{served} cannot use {what}.")
    check_mode(entry, engine.modes, request.mode)
    check_audio(entry, makes_audio(engine), request)
    if request.auto_duration:
        seconds = _auto_length(entry, auto_seconds(engine))
        request = replace(request, duration=seconds, frames=frames_for(seconds))
    check_keyframes(entry, engine, request)
    return request


def _auto_length(entry: ModelEntry, seconds: int) -> int:
    return min(max(seconds, entry.min_duration), entry.max_duration)


def check_audio(entry: ModelEntry, makes_audio: bool, request: GenerationRequest) -> None:
    """Sound is asked of an engine that makes it, or refused before the task is stored."""
    if request.generate_audio and not makes_audio:
        raise InvalidParameter(
            "generate_audio",
            f"model {entry.name} is served here by the {entry.engine} engine, which makes no "
            "sound; set generate_audio to false or choose a model with audio.",
        )


class GivenSettings:
    """The settings of one request: body fields over text commands over defaults.

    Errors name the setting as the client spelled it (``--dur`` or ``duration``).
    """

    def __init__(self, fields: Mapping[str, object], commands: dict[str, object],
                 flags: dict[str, str], spelled: Mapping[str, str] | None = None) -> None:
        self._fields = {k: v for k, v in fields.items() if v is not None}
        self._values = {**commands, **self._fields}
        self._flags = flags
        self._spelled = spelled or {}

    def name(self, setting: str) -> str:
        if setting in self._fields:
            return self._spelled.get(setting, setting)
        return self._flags.get(setting, setting)

    def has(self, setting: str) -> bool:
        return setting in self._values

    def get(self, setting: str, default: object = None) -> object:
        return self._values.get(setting, default)

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
    media: Sequence[MediaInput] = (),
) -> GenerationRequest:
    """Validate one create request; ``fields`` holds the surface's top-level settings."""
    if text is not None and len(text) > PROMPT_MAX_CHARS:
        raise InvalidParameter(PROMPT_PARAM.get(surface, "prompt"),
                               f"is {len(text)} characters long; the limit is "
                               f"{PROMPT_MAX_CHARS}.")
    mode = _mode(entry, images, media, surface)
    prompt, commands, flags = parse_commands(text or "")
    if mode is Mode.TEXT and not prompt:
        raise MissingParameter("text")
    given = GivenSettings(fields, commands, flags, SPELLED.get(surface, {}))
    image_mode = mode in (Mode.FIRST_FRAME, Mode.FIRST_LAST)
    draft = given.bool("draft")
    if draft and not entry.draft:
        raise given.invalid("draft", f"model {entry.name} does not offer drafts.")

    resolution = _resolution(entry, given, mode, draft)
    ratio = given.choice("ratio", ADAPTIVE if image_mode else "16:9", (*RATIOS, ADAPTIVE))
    if ratio == ADAPTIVE and not image_mode:
        raise given.invalid("ratio", "adaptive follows the first frame and needs one.")
    if ratio != ADAPTIVE and image_mode and entry.adaptive_ratio_required:
        raise given.invalid("ratio", f"model {entry.name} takes only adaptive in {mode.label} "
                                     f"mode, got {ratio}.")
    duration, frames, auto_duration = _length(entry, given, surface)
    given.int("framespersecond", FPS, FPS, FPS)

    seed = given.int("seed", -1, -1, SEED_MAX)
    camera_fixed = given.bool("camerafixed")
    if camera_fixed and mode is Mode.REFERENCE:
        raise given.invalid("camerafixed", "is not available in reference-image mode.")
    return GenerationRequest(
        model=model, prompt=prompt, mode=mode, images=tuple(images), media=tuple(media),
        omni_reference_task_type=_omni_type(entry, given, media),
        resolution=resolution, ratio=ratio, duration=duration, frames=frames,
        auto_duration=auto_duration, draft=draft,
        seed=secrets.randbelow(SEED_MAX + 1) if seed == -1 else seed,
        camera_fixed=camera_fixed, surface=surface, **delivery_settings(entry, given),
    )


def delivery_settings(entry: ModelEntry, given: GivenSettings) -> dict[str, Any]:
    """The settings that change how a task is run and returned, not what it shows.

    A final rendered from a draft takes these from its own request.
    """
    callback_url = given.get("callback_url")
    if callback_url is not None and not str(callback_url).lower().startswith(
            ("http://", "https://")):
        raise given.invalid("callback_url", "must be an http or https URL.")
    safety_identifier = given.get("safety_identifier")
    if safety_identifier is not None and len(str(safety_identifier)) > SAFETY_IDENTIFIER_MAX:
        raise given.invalid("safety_identifier",
                            f"must be at most {SAFETY_IDENTIFIER_MAX} characters.")
    generate_audio = given.bool("generate_audio")
    if generate_audio and not entry.audio:
        raise given.invalid("generate_audio", f"model {entry.name} makes no sound.")
    output_format = str(given.get("output_format") or "mp4")
    if output_format not in entry.output_formats:
        raise given.invalid("output_format", f"model {entry.name} writes "
                                             f"{' or '.join(entry.output_formats)}.")
    return dict(
        watermark=given.bool("watermark"), return_last_frame=given.bool("return_last_frame"),
        service_tier=ServiceTier(given.choice(
            "service_tier", ServiceTier.DEFAULT.value, [t.value for t in ServiceTier])),
        execution_expires_after=given.int(
            "execution_expires_after", DEFAULT_EXPIRES_AFTER, *EXPIRES_AFTER_RANGE),
        callback_url=str(callback_url) if callback_url is not None else None,
        priority=given.int("priority", 0, *PRIORITY_RANGE), generate_audio=generate_audio,
        safety_identifier=str(safety_identifier) if safety_identifier is not None else None,
        output_format=output_format,
    )


def _mode(entry: ModelEntry, images: Sequence[ImageInput], media: Sequence[MediaInput],
          surface: str) -> Mode:
    mode = detect_mode(images, entry.max_reference_images, surface)
    if not media:
        return mode
    if mode not in (Mode.TEXT, Mode.REFERENCE):
        raise InvalidParameter("content", "reference videos and audio go with reference "
                                          "images only, not with a first or last frame.")
    limits = {"reference_video": entry.max_reference_videos,
              "reference_audio": entry.max_reference_audio}
    for role, what in MEDIA_ROLES.items():
        count = sum(m.role == role for m in media)
        if count > limits[role]:
            detail = (f"at most {limits[role]} {what}" if limits[role] else f"no {what}")
            raise InvalidParameter("content", f"model {entry.name} takes {detail}, got {count}.")
    return Mode.REFERENCE


def _omni_type(entry: ModelEntry, given: GivenSettings,
               media: Sequence[MediaInput]) -> str | None:
    if not given.has("omni_reference_task_type"):
        return None
    kind = given.choice("omni_reference_task_type", "auto", OMNI_TYPES)
    if not entry.max_reference_videos:
        raise given.invalid("omni_reference_task_type",
                            f"model {entry.name} takes no reference videos.")
    if kind in ("edit", "extend") and not any(m.role == "reference_video" for m in media):
        raise given.invalid("omni_reference_task_type", f"{kind} needs a reference video.")
    return kind


def _resolution(entry: ModelEntry, given: GivenSettings, mode: Mode, draft: bool) -> str:
    if draft:
        resolution = str(given.get("resolution") or "480p")
        if resolution != "480p":
            raise InvalidParameter(given.name("resolution"),
                                   f"a draft is rendered at 480p, got {resolution}.",
                                   code="InvalidResolutionParameter")
        return resolution
    resolution = given.choice("resolution", entry.resolution, entry.resolutions)
    if mode is Mode.REFERENCE and resolution == "1080p":
        raise given.invalid("resolution", "1080p is not available in reference-image mode.")
    return resolution


def _length(entry: ModelEntry, given: GivenSettings,
            surface: str) -> tuple[int | None, int, bool]:
    """(duration, frames, whether the engine chooses the length).

    For duration -1 the CPU engines' choice is assumed here; fit_to_engine puts in the
    choice of the engine that will render.
    """
    if given.has("frames"):
        frames = given.int("frames", 0, *FRAMES_RANGE)
        if (frames - 25) % 4:
            raise given.invalid("frames", f"must be 25 + 4n, got {frames}.")
        return None, frames, False
    low, high = max(entry.min_duration, DURATION_FLOOR.get(surface, 0)), entry.max_duration
    duration = parse_int(given.name("duration"), given.get("duration", entry.default_duration))
    if duration == -1 and entry.auto_duration:
        seconds = _auto_length(entry, AUTO_SECONDS)
        return seconds, frames_for(seconds), True
    if not low <= duration <= high:
        auto = ", or -1 to let the model choose" if entry.auto_duration else ""
        raise given.invalid("duration", f"must be between {low} and {high}{auto}, got "
                                        f"{duration}. That is the range of model {entry.name}.")
    return duration, frames_for(duration), False
