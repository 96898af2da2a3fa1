"""LTX-2 through diffusers' ``LTX2ConditionPipeline``: keyframes, and a sound track.

Keyframes are ``LTX2VideoCondition(frames=image, index=latent index)``: the first frame at
index 0 and the last at index −1, the last latent frame, which decodes to the last of the
``8k+1`` frames rendered. Counts that are not ``8k+1`` (Ark's ``25+4n``) are rendered at the
next ``8k+1`` and thinned evenly back to the asked count, so both keyframes stay on the
clip's ends. The model renders 24 fps video and its audio together; the audio comes back
with the frames (``render_audio``) and is muxed as AAC when the task asks for sound.

Variants: ``distilled`` (8 steps on the published sigma schedule, no guidance) and ``full``
(40 steps with classifier-free, spatio-temporal and modality guidance). The optional latent
upscaler stage reuses the LTX-Video recipe with ``LTX2LatentUpsamplePipeline``.

Imported only by ``segue.engines.diffusion`` (torch and diffusers inside functions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segue.domain import Mode
from segue.engines.base import AudioTrack, RenderJob
from segue.engines.diffusion import ltx

PIPELINE = "LTX2ConditionPipeline"
VARIANTS = ("distilled", "full")
MAKES_AUDIO = True
# diffusers' DISTILLED_SIGMA_VALUES (pipelines/ltx2/utils.py), the distilled checkpoint's schedule.
DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875)
# Guidance off for the distilled model: one transformer pass per step (video and audio).
_NO_GUIDANCE = {"stg_scale": 0.0, "modality_scale": 1.0, "audio_guidance_scale": 1.0,
                "audio_stg_scale": 0.0, "audio_modality_scale": 1.0,
                "spatio_temporal_guidance_blocks": None}
DEFAULTS: dict[str, dict[str, Any]] = {
    "distilled": {"steps": 8, "guidance_scale": 1.0, "sigmas": DISTILLED_SIGMAS, **_NO_GUIDANCE},
    # The pipeline's own guidance defaults (LTX-2.3 recommendations) with the model card's steps.
    "full": {"steps": 40, "guidance_scale": 3.0},
}
NEGATIVE_PROMPT = ltx.NEGATIVE_PROMPT
DECODE = {"decode_timestep": 0.05, "decode_noise_scale": 0.025}


def modes(variant: str) -> frozenset[Mode]:
    return ltx.MODES


def render_frames(pipe: Any, job: RenderJob) -> int:
    return ltx.render_frames(pipe, job)


def check(pipe: Any, job: RenderJob) -> None:
    ltx.check(pipe, job)


def call_kwargs(pipe: Any, job: RenderJob, prompt: str) -> dict[str, Any]:
    """The keyword arguments of ``LTX2ConditionPipeline.__call__`` for one render."""
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition
    from PIL import Image

    conditions = []
    if job.first is not None and job.mode in (Mode.FIRST_FRAME, Mode.FIRST_LAST):
        conditions.append(LTX2VideoCondition(frames=Image.fromarray(job.first), index=0))
    if job.last is not None and job.mode == Mode.FIRST_LAST:
        conditions.append(LTX2VideoCondition(frames=Image.fromarray(job.last), index=-1))
    kwargs: dict[str, Any] = {
        "prompt": prompt, "width": job.width, "height": job.height,
        "num_frames": render_frames(pipe, job), "frame_rate": float(job.fps), **DECODE,
    }
    if conditions:
        kwargs["conditions"] = conditions
    return kwargs


def frame_indices(rendered: int, wanted: int) -> list[int]:
    """``wanted`` indices spread evenly over ``rendered`` frames, first and last included."""
    if wanted == 1:
        return [0]
    return [round(i * (rendered - 1) / (wanted - 1)) for i in range(wanted)]


def render_audio(pipe: Any, out: Any, job: RenderJob) -> AudioTrack:
    """The vocoder's waveform (batch × channels × samples) as a track of the video's length."""
    samples = out.audio[0].float().cpu().numpy()
    rate = int(pipe.vocoder.config.output_sampling_rate)
    return AudioTrack(np.ascontiguousarray(samples, dtype=np.float32), rate)
