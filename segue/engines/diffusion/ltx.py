"""LTX-Video through diffusers' ``LTXConditionPipeline``: what the diffusion engine must know.

Keyframes are ``LTXVideoCondition`` items: the first frame at ``frame_index=0``, the
last frame at ``frame_index=frames-1`` and a storyboard's keyframes each at its own
frame index (the pipeline places an image condition at any pixel frame); without
conditions the pipeline renders from the text alone. The VAE compresses 32x in space and
8x in time, so a video must be a multiple of 32 pixels on each side. Seedance sizes all
are, and 24·d+1 frames are all 8k+1; the other frame counts Ark accepts (25+4n) are
rendered at the next 8k+1 with the last frame conditioned at ``frames-1`` and the surplus
frames dropped, so nothing is stretched.

With an ``upscaler`` (LTX-Video 0.9.7/0.9.8's latent spatial upsampler) a render takes the
two-stage path of the diffusers docs; see ``Upscale`` below and ``docs/gpu.md``.

Imported only by ``segue.engines.diffusion`` (torch and diffusers inside functions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segue.domain import Mode
from segue.engines.base import RenderJob
from segue.errors import InvalidParameter, ModelNotOpen

PIPELINE = "LTXConditionPipeline"
MODES = frozenset({Mode.FIRST_LAST, Mode.FIRST_FRAME, Mode.TEXT})
VARIANTS = ("dev", "distilled")
MAKES_AUDIO = False
# Keyframes between the ends: each is one more latent frame of tokens for the transformer.
MAX_KEYFRAMES = 8
# sides of a size the pipeline takes: LTXConditionPipeline checks 32, whatever its VAE
SIZE_MULTIPLE = 32

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


def modes(variant: str) -> frozenset[Mode]:
    return MODES


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
        for index, image in job.keyframes:  # a storyboard's frames, each at its own index
            conditions.append(LTXVideoCondition(image=Image.fromarray(image), frame_index=index))
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


# -- optional latent upscaler stage (LTX-Video 0.9.7 / 0.9.8) --------------------------------
# The recipe of the diffusers docs: render at a reduced size to latents, upsample the latents
# 2x with Lightricks' spatial upsampler, denoise the upscaled latents a few steps from partial
# noise with the same keyframes, decode, and resize to the asked size.

# Second-pass schedules from the diffusers docs: the distilled model denoises from this list
# at strength 0.999 (its last 4 steps); the dev model takes 10 steps at strength 0.4 (4 steps).
REFINE_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {"steps": 10, "strength": 0.4},
    "distilled": {"steps": 5, "strength": 0.999, "timesteps": (1000, 909, 725, 421, 0)},
}
# The docs render the first pass at 2/3 of the target size, so the 2x-upscaled pass is 4/3 of
# it and the final resize is a downscale (sharper than upscaling a half-size render).
BASE_SCALE = 2 / 3
# LTXConditionPipeline checks that both sides are multiples of 32, whatever its VAE.
PIPELINE_MULTIPLE = 32


@dataclass
class Upscale:
    """Settings of the latent upscaler stage; ``pipe`` is the LTXLatentUpsamplePipeline."""

    upsampler: str
    steps: int
    strength: float
    timesteps: tuple[float, ...] | None = None
    adain: float = 1.0
    tone_map: float = 0.0
    base_scale: float = BASE_SCALE
    pipe: Any = field(default=None, repr=False)

    @property
    def refine_steps(self) -> int:
        """Steps the second pass runs: diffusers keeps the last ``int(steps·strength)``."""
        total = len(self.timesteps) if self.timesteps else self.steps
        return min(int(total * self.strength), total)


def upscale_settings(
    variant: str,
    upsampler: str | None,
    steps: int | None = None,
    strength: float | None = None,
    adain: float | None = None,
    tone_map: float = 0.0,
    base_scale: float | None = None,
) -> Upscale | None:
    """The stage's settings from the engine options, or None when no upsampler is named."""
    if not upsampler:
        return None
    adain = 1.0 if adain is None else adain
    base_scale = BASE_SCALE if base_scale is None else base_scale
    settings = dict(REFINE_DEFAULTS[variant])
    if steps is not None and int(steps) != settings["steps"]:
        settings["steps"] = int(steps)
        settings.pop("timesteps", None)  # a published schedule only fits its own length
    if strength is not None:
        settings["strength"] = float(strength)
    up = Upscale(upsampler, adain=float(adain), tone_map=float(tone_map),
                 base_scale=float(base_scale), **settings)
    if not 0.0 < up.strength < 1.0:
        raise ValueError(f"upscale_strength must be between 0 and 1, not {up.strength}")
    if up.refine_steps < 1:
        raise ValueError(f"upscale_steps × upscale_strength must give at least one step "
                         f"({up.steps} × {up.strength} gives none)")
    if not 0.0 <= up.tone_map <= 1.0:
        raise ValueError(f"upscale_tone_map must be between 0 and 1, not {up.tone_map}")
    if not 0.0 < up.base_scale <= 1.0:
        raise ValueError(f"upscale_base must be in (0, 1], not {up.base_scale}")
    return up


def load_upsampler(
    up: Upscale, pipe: Any, source: str, local_only: bool, dtype_kwargs: dict[str, Any],
    classes: tuple[Any, Any] | None = None,
) -> None:
    """Load the latent upsampler from a pipeline folder (``latent_upsampler/`` beside
    ``model_index.json``, as Lightricks publishes it) or a bare model folder, sharing the
    main pipeline's VAE, in the transformer's dtype and on its device. ``classes``: the
    (model, pipeline) classes, LTX-Video's by default."""
    if classes is None:
        from diffusers import LTXLatentUpsamplePipeline
        from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel

        classes = (LTXLatentUpsamplerModel, LTXLatentUpsamplePipeline)
    model_class, pipeline_class = classes

    root = Path(source)
    local = local_only or root.is_dir()
    tries: list[str | None]
    if root.is_dir():
        tries = ["latent_upsampler"] if (root / "model_index.json").is_file() else [None]
    else:
        tries = ["latent_upsampler", None]  # a hub id: either layout
    error: Exception | None = None
    for subfolder in tries:
        try:
            model = model_class.from_pretrained(
                source, subfolder=subfolder, local_files_only=local, **dtype_kwargs)
            break
        except Exception as exc:  # the hub and the loaders raise many kinds
            error = exc
    else:
        raise ModelNotOpen(
            f"The latent upscaler {up.upsampler!r} could not be loaded from {source}: {error}. "
            "Place it in diffusers layout (see docs/gpu.md) or remove the upscaler option."
        ) from error
    model.to(pipe.transformer.device)
    up.pipe = pipeline_class(vae=pipe.vae, latent_upsampler=model)
    up.pipe.set_progress_bar_config(disable=True)


def low_res_size(job: RenderJob, up: Upscale) -> tuple[int, int]:
    """The first pass's width and height: ``base_scale`` of the target, to a multiple of 32."""
    m = PIPELINE_MULTIPLE

    def side(length: int) -> int:
        return max(m, round(length * up.base_scale / m) * m)

    return side(job.width), side(job.height)


def refine_kwargs(
    up: Upscale, kwargs: dict[str, Any], first_pass: Any, latents: Any
) -> dict[str, Any]:
    """The second pass: the same prompt and keyframes at twice the first pass's size,
    denoised from the upscaled latents with the refine schedule."""
    refined = {k: v for k, v in kwargs.items() if k not in ("timesteps", "num_inference_steps")}
    refined.update(width=2 * kwargs["width"], height=2 * kwargs["height"], latents=latents,
                   denoise_strength=up.strength)
    if up.timesteps:
        refined["timesteps"] = list(up.timesteps)
    else:
        refined["num_inference_steps"] = up.steps
    return refined


def upsample(up: Upscale, latents: Any) -> Any:
    """Upscale normalised latents 2x (AdaIN to the input's statistics, optional tone map)."""
    return up.pipe(latents=latents, adain_factor=up.adain,
                   tone_map_compression_ratio=up.tone_map, output_type="latent").frames


def fit(video: Any, width: int, height: int) -> Any:
    """Resize an F×3×H×W video in [0, 1] to exactly ``width``×``height`` (bicubic with
    antialiasing, as a high-quality image resize does); unchanged when already that size."""
    import torch.nn.functional as F

    if tuple(video.shape[-2:]) == (height, width):
        return video
    resized = F.interpolate(video.float(), size=(height, width), mode="bicubic",
                            align_corners=False, antialias=True)
    return resized.clamp_(0.0, 1.0).to(video.dtype)


def frame_indices(rendered: int, wanted: int) -> list[int]:
    """The rendered frames the clip keeps: the first ``wanted`` (the last keyframe was
    placed on frame ``wanted - 1``)."""
    return list(range(wanted))
