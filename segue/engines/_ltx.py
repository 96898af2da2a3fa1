"""LTX-Video through diffusers' ``LTXConditionPipeline``: what the diffusion engine must know.

Keyframes are ``LTXVideoCondition`` items: the first frame at ``frame_index=0`` and the
last frame at ``frame_index=frames-1``; without conditions the pipeline renders from the
text alone. The VAE compresses 32x in space and 8x in time, so a video must be a multiple
of 32 pixels on each side. Seedance sizes all are, and 24·d+1 frames are all 8k+1; the
other frame counts Ark accepts (25+4n) are rendered at the next 8k+1 with the last frame
conditioned at ``frames-1`` and the surplus frames dropped, so nothing is stretched.

Imported only by ``segue.engines.diffusion`` (torch and diffusers inside functions).
"""

from __future__ import annotations

from typing import Any

from segue.domain import Mode
from segue.engines.base import RenderJob
from segue.errors import InvalidParameter

PIPELINE = "LTXConditionPipeline"
MODES = frozenset({Mode.FIRST_LAST, Mode.FIRST_FRAME, Mode.TEXT})
VARIANTS = ("dev", "distilled")

# Published by Lightricks for the 0.9.7/0.9.8 distilled checkpoints (diffusers docs):
# guidance 1 and this 8-step schedule.
DISTILLED_TIMESTEPS = (1000, 993, 987, 981, 975, 909, 725, 0.03)

DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {"steps": 30, "guidance_scale": 5.0, "guidance_rescale": 0.7},
    "distilled": {"steps": 8, "guidance_scale": 1.0, "timesteps": DISTILLED_TIMESTEPS},
}
# Recommended for the timestep-aware VAE of LTX 0.9.1 and later.
DECODE = {"decode_timestep": 0.05, "decode_noise_scale": 0.025, "image_cond_noise_scale": 0.0}
NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"


def render_frames(pipe: Any, job: RenderJob) -> int:
    """The frame count to generate for ``job``: ``job.frames`` rounded up to k·t+1."""
    t = pipe.vae_temporal_compression_ratio
    return ((job.frames - 1 + t - 1) // t) * t + 1


def check(pipe: Any, job: RenderJob) -> None:
    """Refuse, with a message that teaches, a size the VAE cannot represent exactly."""
    s = pipe.vae_spatial_compression_ratio
    if job.width % s or job.height % s:
        raise InvalidParameter(
            "resolution",
            f"LTX-Video renders sizes whose sides are multiples of {s} pixels; "
            f"{job.width}x{job.height} is not. Choose a size from the Seedance table.",
        )


def call_kwargs(pipe: Any, job: RenderJob, prompt: str) -> dict[str, Any]:
    """The keyword arguments of ``LTXConditionPipeline.__call__`` for one render."""
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
    from PIL import Image

    conditions = []
    if job.first is not None and job.mode in (Mode.FIRST_FRAME, Mode.FIRST_LAST):
        conditions.append(LTXVideoCondition(image=Image.fromarray(job.first), frame_index=0))
    if job.last is not None and job.mode == Mode.FIRST_LAST:
        last = LTXVideoCondition(image=Image.fromarray(job.last), frame_index=job.frames - 1)
        conditions.append(last)
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "width": job.width,
        "height": job.height,
        "num_frames": render_frames(pipe, job),
        "frame_rate": job.fps,
        **DECODE,
    }
    if conditions:
        kwargs["conditions"] = conditions
    return kwargs
