"""LTX-2 through diffusers' ``LTX2ConditionPipeline``: keyframes, and a sound track.

Keyframes are ``LTX2VideoCondition(frames=image, index=latent index)``: the first frame at
index 0 and the last at index −1, the last latent frame, which decodes to the last of the
``8k+1`` frames rendered. Counts that are not ``8k+1`` (Ark's ``25+4n``) are rendered at the
next ``8k+1`` and thinned evenly back to the asked count, so both keyframes stay on the
clip's ends. The model renders 24 fps video and its audio together; the audio comes back
with the frames (``render_audio``) and is muxed as AAC when the task asks for sound.

The optional latent upscaler stage follows Lightricks' two-stage recipe: render video and
audio latents at half the size, upsample the video latents 2x with
``LTX2LatentUpsamplePipeline``, then refine both at full size from the published stage-2
sigmas (three steps, starting at 0.909375) with the same keyframes.

Variants: ``distilled`` (8 steps on the published sigma schedule, no guidance) and ``full``
(40 steps with classifier-free, spatio-temporal and modality guidance). The optional latent
upscaler stage is described above.

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
SIZE_MULTIPLE = 32  # the VAE compresses 32x in space
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


# diffusers' STAGE_2_DISTILLED_SIGMA_VALUES: the refine pass at the upscaled size.
STAGE_2_SIGMAS = (0.909375, 0.725, 0.421875)
BASE_SCALE = 0.5  # the first pass at half the size; the 2x upsampler brings it back


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


def upscale_settings(
    variant: str,
    upsampler: str | None,
    steps: int | None = None,
    strength: float | None = None,
    adain: float | None = None,
    tone_map: float = 0.0,
    base_scale: float | None = None,
) -> ltx.Upscale | None:
    """The stage's settings; the refine schedule is the published one (``steps`` and
    ``strength`` of the LTX-Video recipe do not apply: the sigmas set the noise level)."""
    if not upsampler:
        return None
    if steps is not None or strength is not None:
        raise ValueError("upscale_steps and upscale_strength do not apply to ltx2: its refine "
                         "pass runs the published stage-2 sigmas")
    base = BASE_SCALE if base_scale is None else float(base_scale)
    if not 0.0 < base <= 1.0:
        raise ValueError(f"upscale_base must be in (0, 1], not {base}")
    return ltx.Upscale(upsampler, steps=len(STAGE_2_SIGMAS), strength=1.0,
                       timesteps=STAGE_2_SIGMAS, adain=float(adain or 0.0),
                       tone_map=float(tone_map),
                       base_scale=base)


def load_upsampler(
    up: ltx.Upscale, pipe: Any, source: str, local_only: bool, dtype_kwargs: dict[str, Any]
) -> None:
    from diffusers import LTX2LatentUpsamplePipeline
    from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel

    ltx.load_upsampler(up, pipe, source, local_only, dtype_kwargs,
                       (LTX2LatentUpsamplerModel, LTX2LatentUpsamplePipeline))


def upsample(up: ltx.Upscale, latents: Any) -> Any:
    """Upscale the first pass's (denormalised) video latents 2x."""
    return up.pipe(latents=latents, latents_normalized=False, adain_factor=up.adain,
                   tone_map_compression_ratio=up.tone_map, output_type="latent").frames


def refine_kwargs(
    up: ltx.Upscale, kwargs: dict[str, Any], first_pass: Any, latents: Any
) -> dict[str, Any]:
    """The second pass at twice the first pass's size: the upscaled video latents and the
    first pass's audio latents, re-noised to the first stage-2 sigma and denoised on."""
    refined = {k: v for k, v in kwargs.items()
               if k not in ("sigmas", "timesteps", "num_inference_steps")}
    sigmas = list(up.timesteps or STAGE_2_SIGMAS)
    # The recipe refines with the distilled weights, without guidance, for either variant.
    refined.update(_NO_GUIDANCE, guidance_scale=1.0)
    refined.update(width=2 * kwargs["width"], height=2 * kwargs["height"], latents=latents,
                   audio_latents=first_pass.audio, sigmas=sigmas, noise_scale=sigmas[0],
                   num_inference_steps=len(sigmas))
    return refined

