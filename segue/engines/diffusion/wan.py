"""Wan 2.1 FLF2V-14B and Wan 2.2 I2V-A14B through diffusers' ``WanImageToVideoPipeline``.

The first frame is ``image`` and the last frame ``last_image``; the pipeline always puts
``last_image`` on the final frame, so the frame count must be exactly 4k+1 (the VAE's
4x temporal compression). Every Seedance count is (24·d+1 and Ark's 25+4n). Sides must
be multiples of 16 (8x VAE times the 2x2 patch); the pipeline would silently shrink
other sizes, so they are refused here instead.

Wan 2.1 FLF2V embeds both keyframes with a CLIP image encoder and its transformer
expects exactly two images, so that model does first-and-last only. Wan 2.2 I2V-A14B has
no image encoder and two transformers (high and low noise, switched at
``boundary_ratio``); it also renders from a first frame alone. Wan 2.2 TI2V-5B (variant
``ti2v``, ``expand_timesteps`` in its pipeline config) conditions on the first latent frame
only and would ignore a last image without a word, so first+last is refused for it (a 400
at create, from ``modes``). None renders from text alone (``WanImageToVideoPipeline`` needs
an image).

Imported only by ``segue.engines.diffusion`` (torch and diffusers inside functions).
"""

from __future__ import annotations

from typing import Any

from segue.domain import Mode
from segue.engines.base import RenderJob
from segue.errors import InvalidParameter

PIPELINE = "WanImageToVideoPipeline"
VARIANTS = ("flf2v", "i2v", "ti2v")
MAKES_AUDIO = False
# 8x VAE times the 2x2 patch; a model whose VAE compresses more is checked when it renders
SIZE_MULTIPLE = 16
MODES_BY_VARIANT = {
    "flf2v": frozenset({Mode.FIRST_LAST}),
    "i2v": frozenset({Mode.FIRST_LAST, Mode.FIRST_FRAME}),
    "ti2v": frozenset({Mode.FIRST_FRAME}),
}
# Sampling settings from the model cards (Wan2.1-FLF2V-14B-720P, Wan2.2-I2V-A14B).
DEFAULTS: dict[str, dict[str, Any]] = {
    "flf2v": {"steps": 50, "guidance_scale": 5.5},
    "i2v": {"steps": 40, "guidance_scale": 3.5},
    "ti2v": {"steps": 50, "guidance_scale": 5.0},  # Wan2.2-TI2V-5B
}
NEGATIVE_PROMPT = (
    "static, blurred details, subtitles, worst quality, low quality, JPEG artifacts, ugly, "
    "deformed, disfigured, extra fingers, poorly drawn hands, poorly drawn face, messy background"
)


def modes(variant: str) -> frozenset[Mode]:
    return MODES_BY_VARIANT[variant]


def render_frames(pipe: Any, job: RenderJob) -> int:
    return job.frames


def check(pipe: Any, job: RenderJob) -> None:
    """Refuse sizes and frame counts the pipeline would otherwise alter without a word."""
    patch = pipe.transformer.config.patch_size if pipe.transformer is not None else (1, 2, 2)
    s = pipe.vae_scale_factor_spatial * patch[1]
    if job.width % s or job.height % s:
        raise InvalidParameter(
            "resolution",
            f"Wan renders sizes whose sides are multiples of {s} pixels; "
            f"{job.width}x{job.height} is not. Choose a size from the Seedance table.",
        )
    if job.last is not None and job.mode == Mode.FIRST_LAST and pipe.config.expand_timesteps:
        raise InvalidParameter(
            "content", "This Wan model (TI2V-5B) cannot take a last frame; use Wan 2.2 "
            "I2V-A14B or Wan 2.1 FLF2V for first and last frame generation.")
    t = pipe.vae_scale_factor_temporal
    if (job.frames - 1) % t:
        raise InvalidParameter(
            "frames",
            f"Wan renders {t}k+1 frames (for example 81 or 121); {job.frames} is not of that form.",
        )


def call_kwargs(pipe: Any, job: RenderJob, prompt: str) -> dict[str, Any]:
    """The keyword arguments of ``WanImageToVideoPipeline.__call__`` for one render."""
    from PIL import Image

    if job.first is None:
        raise InvalidParameter("content", "Wan needs a first frame image.")
    last = job.last if job.mode == Mode.FIRST_LAST else None
    return {
        "prompt": prompt,
        "image": Image.fromarray(job.first),
        "last_image": Image.fromarray(last) if last is not None else None,
        "width": job.width,
        "height": job.height,
        "num_frames": job.frames,
    }


def frame_indices(rendered: int, wanted: int) -> list[int]:
    """The rendered frames the clip keeps: the first ``wanted`` (the last keyframe was
    placed on frame ``wanted - 1``)."""
    return list(range(wanted))
