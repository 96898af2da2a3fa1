"""Clips that start on the first frame and end on the last, whatever the model does.

Keyframe video models condition on the keyframes but do not reproduce them exactly: the
VAE round trip softens them, and some models blur or drift on the final frames (LTX-2, Wan
2.1 with two near-identical keyframes). ``blend`` (the default) puts the exact keyframe on
the end frame and cross-fades it into the model's frames over the next few, so the clip
starts and ends on the client's pictures without a visible jump (a storyboard's keyframes
likewise, on their frames and fading out on both sides); ``model`` leaves the
model's frames untouched. See "Ends that match" in ``docs/gpu.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segue.domain import Mode
from segue.engines.base import RenderJob

MODES = ("blend", "model")
# 1/6 s at 24 fps: short enough to keep the model's motion, long enough to hide the seam.
FADE_FRAMES = 4


@dataclass(frozen=True)
class EndsSettings:
    mode: str = "blend"
    frames: int = FADE_FRAMES

    @classmethod
    def parse(cls, mode: str, frames: int) -> EndsSettings:
        if mode not in MODES:
            raise ValueError(f"ends must be one of {', '.join(MODES)}, not {mode!r}")
        if not 1 <= int(frames) <= 24:
            raise ValueError(f"ends_frames must be between 1 and 24, not {frames}")
        return cls(mode, int(frames))


def keyframe_weight(distance: int, frames: int) -> float:
    """The keyframe's share in the frame ``distance`` frames from its end: 1, then down."""
    return max(0.0, 1.0 - distance / frames)


def correct_ends(
    frame: np.ndarray, index: int, job: RenderJob, settings: EndsSettings
) -> np.ndarray:
    """Frame ``index`` of ``job.frames`` with the job's keyframes blended in near the ends."""
    if settings.mode == "model":
        return frame
    pulls = []
    if job.first is not None and job.mode in (Mode.FIRST_FRAME, Mode.FIRST_LAST):
        pulls.append((job.first, keyframe_weight(index, settings.frames)))
    if job.last is not None and job.mode == Mode.FIRST_LAST:
        pulls.append((job.last, keyframe_weight(job.frames - 1 - index, settings.frames)))
        pulls += [(key, keyframe_weight(abs(index - at), settings.frames))
                  for at, key in job.keyframes]
    pulls = [(key, w) for key, w in pulls if w > 0.0]
    if not pulls:
        return frame
    out = frame.astype(np.float32)
    for key, weight in pulls:
        out += weight * (key.astype(np.float32) - out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
