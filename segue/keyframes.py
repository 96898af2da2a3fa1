"""Storyboards: keyframes at chosen times between the first and the last frame.

A keyframe is an image with the role ``keyframe`` and a ``time`` in seconds; it lands on
output frame round(time·fps) (``domain.keyframe_index``). These are the rules every surface
shares, checked once the request's length is known (``requests.fit_to_engine``), each a 400
naming the surface's own field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from segue.domain import KEYFRAME, GenerationRequest, ImageInput, Mode, keyframe_index
from segue.errors import InvalidParameter
from segue.models import ModelEntry

# The field a surface takes keyframes in, for the errors.
PARAM = {"ark": "content", "pixazo": "keyframes", "openai": "frame_images",
         "cli": "--keyframe"}


def param(surface: str) -> str:
    return PARAM.get(surface, "keyframes")


def engine_keyframes(engine: object) -> int:
    """How many keyframes an engine places between the ends (``max_keyframes``; 0 where it
    does not say)."""
    return int(getattr(engine, "max_keyframes", 0))


def keyframe_limit(entry: ModelEntry, engine: object) -> int:
    """How many keyframes ``entry`` takes here: none without first-and-last-frame mode (in
    the model and in its engine), else the engine's limit, or the registry's when lower."""
    modes: frozenset[Mode] = getattr(engine, "modes", frozenset())
    if Mode.FIRST_LAST not in entry.modes or Mode.FIRST_LAST not in modes:
        return 0
    limit = engine_keyframes(engine)
    return limit if entry.max_keyframes is None else min(limit, entry.max_keyframes)


def check_ends(images: Sequence[ImageInput], surface: str) -> list[ImageInput]:
    """The images other than keyframes; keyframes go between a first and a last frame."""
    others = [i for i in images if i.role != KEYFRAME]
    if len(others) < len(images) and sorted(i.role for i in others) != [
            "first_frame", "last_frame"]:
        raise InvalidParameter(param(surface), "keyframes go between a first frame and a last "
                                               "frame: give both with them.")
    return others


def check_keyframes(entry: ModelEntry, engine: object, request: GenerationRequest) -> None:
    """Refuse a storyboard the model or its engine cannot render, or whose times do not fit
    the video's length (known here: an engine's choice of length is already made)."""
    keyframes = request.keyframes
    if not keyframes:
        return
    name = param(request.surface)
    if Mode.FIRST_LAST not in entry.modes:
        raise InvalidParameter(name, f"model {entry.name} has no first-and-last-frame mode, "
                                     "which keyframes need.")
    limit = keyframe_limit(entry, engine)
    if limit == 0:
        raise InvalidParameter(name, f"model {entry.name} is served here by the {entry.engine} "
                                     "engine, which cannot place keyframes between the ends; "
                                     "send a first and a last frame only.")
    if len(keyframes) > limit:
        raise InvalidParameter(name, f"model {entry.name} takes at most {limit} keyframes "
                                     f"between the ends, got {len(keyframes)}.")
    _check_times(keyframes, request.frames, request.fps, name)


def _check_times(keyframes: Sequence[ImageInput], frames: int, fps: int, name: str) -> None:
    name = name if name.startswith("--") else f"{name}.time"
    length = (frames - 1) / fps
    taken = {0: "the first frame", frames - 1: "the last frame"}
    for keyframe in keyframes:
        time = keyframe.time
        if time is None or not math.isfinite(time) or not 0 < time < length:
            raise InvalidParameter(name, f"a keyframe's time must be more than 0 and less than "
                                         f"{length:g} s (the video's length), got {time}.")
        index = keyframe_index(time, fps)
        if index in taken:
            raise InvalidParameter(name, f"the keyframe at {time:g} s lands on frame {index} "
                                         f"(round(time × {fps})), where {taken[index]} is "
                                         "already.")
        taken[index] = f"the keyframe at {time:g} s"
