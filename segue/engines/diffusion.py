"""The GPU engine: open keyframe video models (LTX-Video, Wan) through ``diffusers``.

One ``DiffusionEngine`` holds one pipeline, loaded once (``load()``, lazily on the first
render or eagerly by a worker at start) and kept between tasks. The pipeline family
(``_ltx``, ``_wan``) knows how its model wants keyframes and which sizes it can render;
this module does what they share: finding the weights, device and dtype, seeding,
per-step progress (which is also where a cancelled task stops), turning CUDA
out-of-memory into a failed task, and timing each stage for the benchmark.

torch and diffusers are imported inside functions only: importing this module is free,
and the CPU install never needs them. Options are documented in ``docs/gpu.md``.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from segue.domain import Mode
from segue.engines import _ltx, _wan
from segue.engines._timing import StageTimer
from segue.engines.base import RenderJob
from segue.errors import InvalidParameter, SegueError, ServiceUnavailable

log = logging.getLogger(__name__)

FAMILIES: dict[str, ModuleType] = {"ltx": _ltx, "wan": _wan}
CAMERA_FIXED_INSTRUCTION = "The camera is fixed and does not move."
# Above this many pixels per frame the VAE decodes in tiles (1080p needs it on 80 GB).
TILING_PIXELS = 1280 * 720
_DTYPES = ("bfloat16", "float16", "float32")


class DiffusionEngine:
    """Renders with one diffusers pipeline; see ``docs/gpu.md`` for every option."""

    name = "diffusion"

    def __init__(
        self,
        family: str,
        model: str,
        variant: str | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        timesteps: list[float] | None = None,
        negative_prompt: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        models_dir: str | None = None,
        local_only: bool = False,
        compile: bool | str = False,
        attention_backend: str | None = None,
        vae_tiling: bool | str = "auto",
        step_cache: float | None = None,
        cpu_offload: bool = False,
        upscaler: str | None = None,
        upscale_steps: int | None = None,
        upscale_strength: float | None = None,
        upscale_adain: float = 1.0,
        upscale_tone_map: float = 0.0,
        upscale_base: float = _ltx.BASE_SCALE,
    ) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown diffusion family {family!r}; known: {', '.join(FAMILIES)}")
        self.family = FAMILIES[family]
        self.variant = variant or self.family.VARIANTS[0]
        if self.variant not in self.family.VARIANTS:
            known = ", ".join(self.family.VARIANTS)
            raise ValueError(f"unknown {family} variant {self.variant!r}; known: {known}")
        if dtype not in ("auto", *_DTYPES):
            raise ValueError(f"dtype must be auto or one of {', '.join(_DTYPES)}, not {dtype!r}")
        self.model = model
        self.sampling = _sampling(self.family.DEFAULTS[self.variant], steps, guidance_scale,
                                  timesteps)
        self.negative_prompt = (
            negative_prompt if negative_prompt is not None else self.family.NEGATIVE_PROMPT
        )
        self.dtype, self.device = dtype, device
        self.models_dir = models_dir or os.environ.get("SEGUE_MODELS_DIR")
        self.local_only = local_only
        self.compile, self.attention_backend = compile, attention_backend
        self.vae_tiling, self.step_cache, self.cpu_offload = vae_tiling, step_cache, cpu_offload
        if upscaler and self.family is not _ltx:
            raise ValueError("the latent upscaler option exists for the ltx family only")
        self.upscale = _ltx.upscale_settings(
            self.variant, upscaler, upscale_steps, upscale_strength, upscale_adain,
            upscale_tone_map, upscale_base,
        )
        self.pipe: Any = None
        self.timer = StageTimer()

    @property
    def modes(self) -> frozenset[Mode]:
        if self.family is _wan:
            return _wan.MODES_BY_VARIANT[self.variant]
        return _ltx.MODES

    # -- loading -------------------------------------------------------------------------

    def load(self) -> None:
        """Load the pipeline (and latent upscaler) once; missing weights fail here, clearly."""
        up = self.upscale
        if up is not None and up.pipe is None:
            up_source = self._find_weights(up.upsampler, "latent upscaler",
                                           ("model_index.json", "config.json"))
        if self.pipe is None:
            self._load_pipeline()
        if up is not None and up.pipe is None:
            _, diffusers = _import_gpu_stack()
            dtype = {_dtype_kwarg(diffusers): self.pipe.transformer.dtype}
            _ltx.load_upsampler(up, self.pipe, up_source, self.local_only, dtype)

    def _load_pipeline(self) -> None:
        """Build the family's pipeline from its weights and adopt it (``use_pipeline``)."""
        torch, diffusers = _import_gpu_stack()
        device = _resolve_device(torch, self.device)
        dtype = _resolve_dtype(torch, self.dtype, device)
        source = self._find_weights(self.model)
        pipeline_class = getattr(diffusers, self.family.PIPELINE)
        started = time.perf_counter()
        try:
            pipe = pipeline_class.from_pretrained(
                source, **{_dtype_kwarg(diffusers): self._component_dtypes(torch, dtype)},
                local_files_only=self.local_only or Path(source).is_dir(),
            )
        except Exception as exc:  # the hub and the loaders raise many kinds
            raise ServiceUnavailable(
                f"The diffusion model {self.model!r} could not be loaded from {source}: {exc}. "
                "Place it in diffusers layout (see docs/gpu.md) or fix the model registry."
            ) from exc
        self.use_pipeline(pipe, device)
        log.info("loaded %s from %s on %s in %.1f s", self.model, source, device,
                 time.perf_counter() - started)

    def use_pipeline(self, pipe: Any, device: str | None = None) -> None:
        """Adopt an already-built pipeline (the benchmark builds random full-size ones)."""
        torch, _ = _import_gpu_stack()
        device = device or _resolve_device(torch, self.device)
        if self.cpu_offload and device.startswith("cuda"):
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        self._speed_up(pipe)
        self.timer.install(pipe)
        self.pipe = pipe

    def _find_weights(
        self, name: str, what: str = "diffusion model",
        markers: tuple[str, ...] = ("model_index.json",),
    ) -> str:
        """A local diffusers folder if there is one, else the hub id (unless local_only)."""
        path = Path(name).expanduser()
        looked = []
        candidates = [path] if path.is_absolute() or name.startswith((".", "~")) else []
        if not candidates and self.models_dir:
            candidates = [Path(self.models_dir) / name]
        for candidate in candidates:
            looked.append(str(candidate))
            if any((candidate / marker).is_file() for marker in markers):
                return str(candidate)
        if candidates and (path.is_absolute() or self.local_only):
            raise ServiceUnavailable(
                f"The {what} {name!r} was not found: no diffusers folder "
                f"(with {' or '.join(markers)}) at {', '.join(looked)}. Download it into "
                "SEGUE_MODELS_DIR (see docs/gpu.md) or correct the model registry."
            )
        if self.local_only:
            raise ServiceUnavailable(
                f"The {what} {name!r} is not a local folder, SEGUE_MODELS_DIR is "
                "not set and hub downloads are off (local_only). Set SEGUE_MODELS_DIR."
            )
        return name

    def _component_dtypes(self, torch: Any, dtype: Any) -> Any:
        if self.family is _wan and dtype != torch.float32:
            # Wan's VAE and CLIP encoder lose quality below float32 and are small.
            return {"default": dtype, "vae": torch.float32, "image_encoder": torch.float32}
        return dtype

    def _speed_up(self, pipe: Any) -> None:
        """Opt-in speed-ups: attention backend, first-block step cache, torch.compile."""
        transformers = [t for t in (pipe.transformer, getattr(pipe, "transformer_2", None)) if t]
        for model in transformers:
            if self.attention_backend:
                model.set_attention_backend(self.attention_backend)
            if self.step_cache:
                from diffusers import FirstBlockCacheConfig

                model.enable_cache(FirstBlockCacheConfig(threshold=float(self.step_cache)))
            if self.compile:
                mode = self.compile if isinstance(self.compile, str) else None
                # Regional compilation: one compiled block reused by every layer, so the
                # first render compiles in seconds rather than minutes.
                model.compile_repeated_blocks(fullgraph=True, mode=mode)

    # -- rendering -----------------------------------------------------------------------

    def render(self, job: RenderJob) -> Iterator[np.ndarray]:
        """Yield ``job.frames`` RGB uint8 frames; stops at a step boundary when told to."""
        if job.mode not in self.modes:
            raise InvalidParameter(
                "content",
                f"The {self.family.PIPELINE} model {self.model} does not support "
                f"{job.mode.label} generation; it supports "
                f"{', '.join(sorted(m.label for m in self.modes))}.",
            )
        job.progress(0.0)
        self.load()
        self.family.check(self.pipe, job)
        video = self._generate(job)
        if video.shape[0] < job.frames or tuple(video.shape[-2:]) != (job.height, job.width):
            raise SegueError(f"{self.model} rendered {tuple(video.shape)}, not {job.frames} "
                             f"frames of {job.width}x{job.height}.")
        for i in range(job.frames):
            started = time.perf_counter()
            frame = video[i].mul(255).round_().clamp_(0, 255).to("cpu", _uint8()).numpy()
            frame = np.ascontiguousarray(frame.transpose(1, 2, 0))
            self.timer.add("to_frames", time.perf_counter() - started)
            yield frame
            job.progress(0.95 + 0.05 * (i + 1) / job.frames)

    def _generate(self, job: RenderJob) -> Any:
        """Run the pipeline; returns the video as a float tensor F×3×H×W in [0, 1]."""
        torch, _ = _import_gpu_stack()
        kwargs = self.family.call_kwargs(self.pipe, job, prompt_for(job))
        kwargs.update(self._sampling_kwargs())
        self._set_tiling(job.width, job.height)
        self.timer.start()
        oom = None
        try:
            if self.upscale is None:
                video = self._pass(job, kwargs, (0.0, 0.9), "denoise", "pt")
            else:
                video = self._two_passes(job, kwargs)
        except Exception as exc:
            if not _is_oom(torch, exc):
                raise
            oom = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if oom is not None:
            # Out of the except block, the traceback (and the GPU tensors its frames hold)
            # is gone, so emptying the cache really returns the memory.
            self.free_memory()
            raise SegueError(
                f"The GPU ran out of memory rendering {job.width}x{job.height}, {job.frames} "
                f"frames with {self.model} ({oom}). Try a lower resolution or a shorter "
                "video, or enable cpu_offload for this model (docs/gpu.md).",
                code="InternalServiceError",
            )
        self.timer.stop()
        job.progress(0.95)
        return video

    def _pass(
        self, job: RenderJob, kwargs: dict[str, Any], span: tuple[float, float], stage: str,
        output_type: str,
    ) -> Any:
        """One pipeline call, seeded afresh, reporting its steps over ``span`` of progress."""
        torch, _ = _import_gpu_stack()
        generator = torch.Generator("cpu").manual_seed(job.seed)
        self.timer.denoise_stage = stage
        out = self.pipe(output_type=output_type, generator=generator,
                        callback_on_step_end=_progress_callback(job, self.timer, span), **kwargs)
        return out.frames if output_type == "latent" else out.frames[0]

    def _two_passes(self, job: RenderJob, kwargs: dict[str, Any]) -> Any:
        """The latent upscaler recipe: latents at ``upscale_base`` of the size, 2x latent
        upsampling, a short refine pass at the upscaled size, then an exact resize."""
        up = self.upscale
        assert up is not None
        first = len(kwargs.get("timesteps") or ()) or kwargs["num_inference_steps"]
        split = 0.9 * first / (first + up.refine_steps)
        width, height = _ltx.low_res_size(job, up)
        low = {**kwargs, "width": width, "height": height}
        self._set_tiling(2 * width, 2 * height)  # the refine pass decodes at the upscaled size
        latents = self._pass(job, low, (0.0, split), "denoise", "latent")
        latents = self.timer.measure("upsample", _ltx.upsample, up, latents)
        refine = _ltx.refine_kwargs(up, low, latents)
        video = self._pass(job, refine, (split, 0.9), "refine", "pt")
        return self.timer.measure("resize", _ltx.fit, video, job.width, job.height)

    def _sampling_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.sampling)
        steps = kwargs.pop("steps")
        timesteps = kwargs.pop("timesteps", None)
        if timesteps:
            kwargs["timesteps"] = list(timesteps)
        else:
            kwargs["num_inference_steps"] = steps
        if kwargs["guidance_scale"] > 1.0 and self.negative_prompt:
            kwargs["negative_prompt"] = self.negative_prompt
        return kwargs

    def _set_tiling(self, width: int, height: int) -> None:
        vae = self.pipe.vae
        tile = self.vae_tiling
        if tile == "auto":
            tile = width * height > TILING_PIXELS
        vae.enable_tiling() if tile else vae.disable_tiling()

    def free_memory(self) -> None:
        """Return cached GPU memory after a failure; the pipeline itself stays loaded."""
        torch, _ = _import_gpu_stack()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def prompt_for(job: RenderJob) -> str:
    """The text the encoder sees: the cleaned prompt plus the camera instruction."""
    prompt = job.prompt.strip()
    if job.camera_fixed:
        prompt = f"{prompt} {CAMERA_FIXED_INSTRUCTION}".strip()
    return prompt


def _sampling(
    defaults: dict[str, Any],
    steps: int | None,
    guidance_scale: float | None,
    timesteps: list[float] | None,
) -> dict[str, Any]:
    sampling = dict(defaults)
    if steps is not None:
        sampling["steps"] = int(steps)
        # A published schedule only fits its own step count.
        if "timesteps" in sampling and len(sampling["timesteps"]) != steps:
            sampling.pop("timesteps")
    if guidance_scale is not None:
        sampling["guidance_scale"] = float(guidance_scale)
    if timesteps is not None:
        sampling["timesteps"] = tuple(timesteps)
        sampling["steps"] = len(timesteps)
    return sampling


def _progress_callback(job: RenderJob, timer: StageTimer, span: tuple[float, float]) -> Any:
    """``callback_on_step_end``: report the step within ``span`` of the task's progress;
    ``TaskInterrupted`` propagates from here."""
    start, end = span

    def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        timer.step()
        job.progress(start + (end - start) * (step + 1) / max(pipe.num_timesteps, 1))
        return {}

    return on_step_end


def _is_oom(torch: Any, exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _import_gpu_stack() -> tuple[Any, Any]:
    try:
        import diffusers
        import torch
    except ImportError as exc:
        raise ServiceUnavailable(
            "The diffusion engine needs torch and diffusers: pip install 'segue[gpu]' "
            f"({exc.name} is missing)."
        ) from exc
    return torch, diffusers


def _dtype_kwarg(diffusers: ModuleType) -> str:
    """``dtype`` from diffusers 0.42 (``torch_dtype`` is deprecated there), before: the old name."""
    from packaging.version import Version

    return "dtype" if Version(diffusers.__version__) >= Version("0.42") else "torch_dtype"


def _uint8() -> Any:
    import torch

    return torch.uint8


def _resolve_device(torch: Any, device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ServiceUnavailable(
            f"The diffusion engine is configured for device {device!r} but torch sees no CUDA "
            "device. Install a CUDA build of torch, or set device to cpu (very slow)."
        )
    return device


def _resolve_dtype(torch: Any, dtype: str, device: str) -> Any:
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)
