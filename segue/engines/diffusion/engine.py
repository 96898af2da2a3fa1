"""The GPU engine: open keyframe video models (LTX-Video, LTX-2, Wan) through ``diffusers``.

One ``DiffusionEngine`` holds one pipeline, loaded once (``load()``, lazily on the first
render or eagerly by a worker at start) and kept between tasks. The pipeline family
(``ltx``, ``ltx2``, ``wan``) knows how its model wants keyframes and which sizes it can
render; this module does what they share: finding the weights, device and dtype, seeding,
per-step progress (which is also where a cancelled task stops), turning CUDA
out-of-memory into a failed task, matching the clip's ends to the keyframes, and timing
each stage for the benchmark.

torch and diffusers are imported inside functions only: importing this module is free,
and the CPU install never needs them. Options are documented in ``docs/gpu.md``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from segue.domain import Mode
from segue.engines._timing import StageTimer
from segue.engines.base import EngineFault, RenderJob
from segue.engines.diffusion import ltx, ltx2, wan
from segue.engines.diffusion.ends import FADE_FRAMES, EndsSettings, correct_ends
from segue.engines.diffusion.frames import BATCH, host_frames
from segue.engines.diffusion.stack import (
    allocated_bytes,
    dtype_kwarg,
    first_line,
    free_memory,
    import_gpu_stack,
    is_fatal,
    is_oom,
    resolve_device,
    resolve_dtype,
)
from segue.engines.diffusion.weights import find_weights
from segue.errors import InvalidParameter, ModelNotOpen, SegueError

log = logging.getLogger(__name__)

FAMILIES: dict[str, ModuleType] = {"ltx": ltx, "ltx2": ltx2, "wan": wan}
# Memory still held after an out-of-memory error was cleaned up, beyond what the loaded
# model held: more than this means something keeps the failed render alive (a leak), and
# the next task would fail too; the worker restarts instead.
LEAK_BYTES = 512 * 2**20
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
        upscale_adain: float | None = None,
        upscale_tone_map: float = 0.0,
        upscale_base: float | None = None,
        ends: str = "blend",
        ends_frames: int = FADE_FRAMES,
        frames_batch: int = BATCH,
        call_options: dict[str, Any] | None = None,
    ) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown diffusion family {family!r}; known: {', '.join(FAMILIES)}")
        self.family = FAMILIES[family]
        self.makes_audio: bool = self.family.MAKES_AUDIO
        # what a create checks exact sizes against (OpenAI-style `size`), before any render
        self.size_multiple: int = self.family.SIZE_MULTIPLE
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
        if upscaler and not hasattr(self.family, "upscale_settings"):
            raise ValueError(
                "the latent upscaler option exists for the ltx and ltx2 families only")
        self.ends = EndsSettings.parse(ends, ends_frames)
        if int(frames_batch) < 0:
            raise ValueError(f"frames_batch must be 0 (frame by frame) or more, not {frames_batch}")
        self.frames_batch = int(frames_batch)
        self.call_options = dict(call_options or {})
        self.upscale = getattr(self.family, "upscale_settings", ltx.upscale_settings)(
            self.variant, upscaler, upscale_steps, upscale_strength, upscale_adain,
            upscale_tone_map, upscale_base,
        )
        self.pipe: Any = None
        self.timer = StageTimer()
        self._baseline = 0  # GPU bytes held by the loaded pipeline, between renders

    @property
    def modes(self) -> frozenset[Mode]:
        return self.family.modes(self.variant)  # type: ignore[no-any-return]

    @property
    def max_keyframes(self) -> int:
        """Keyframes the family places between the ends (LTX-Video; LTX-2 conditions on whole
        latent frames of 8, so a keyframe could not land on its frame, and Wan takes two)."""
        return int(getattr(self.family, "MAX_KEYFRAMES", 0))

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
            _, diffusers = import_gpu_stack()
            dtype = {dtype_kwarg(diffusers): self.pipe.transformer.dtype}
            self.family.load_upsampler(up, self.pipe, up_source, self.local_only, dtype)
            self._baseline = allocated_bytes()

    def _load_pipeline(self) -> None:
        """Build the family's pipeline from its weights and adopt it (``use_pipeline``)."""
        torch, diffusers = import_gpu_stack()
        device = resolve_device(torch, self.device)
        dtype = resolve_dtype(torch, self.dtype, device)
        source = self._find_weights(self.model)
        pipeline_class = getattr(diffusers, self.family.PIPELINE)
        started = time.perf_counter()
        try:
            pipe = pipeline_class.from_pretrained(
                source, **{dtype_kwarg(diffusers): self._component_dtypes(torch, dtype)},
                local_files_only=self.local_only or Path(source).is_dir(),
            )
        except Exception as exc:  # the hub and the loaders raise many kinds
            raise ModelNotOpen(
                f"The diffusion model {self.model!r} could not be loaded from {source}: {exc}. "
                "Place it in diffusers layout (see docs/gpu.md) or fix the model registry."
            ) from exc
        self.use_pipeline(pipe, device)
        log.info("loaded %s from %s on %s in %.1f s", self.model, source, device,
                 time.perf_counter() - started)

    def use_pipeline(self, pipe: Any, device: str | None = None) -> None:
        """Adopt an already-built pipeline (the benchmark builds random full-size ones)."""
        torch, _ = import_gpu_stack()
        device = device or resolve_device(torch, self.device)
        if self.cpu_offload and device.startswith("cuda"):
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        self._speed_up(pipe)
        self.timer.install(pipe)
        self.pipe = pipe
        self._baseline = allocated_bytes()  # what the model holds between renders

    def _find_weights(
        self, name: str, what: str = "diffusion model",
        markers: tuple[str, ...] = ("model_index.json",),
    ) -> str:
        return find_weights(name, self.models_dir, self.local_only, what, markers)

    def _component_dtypes(self, torch: Any, dtype: Any) -> Any:
        if self.family is wan and dtype != torch.float32:
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
        video, out = self._generate(job)
        if video.shape[0] < job.frames or tuple(video.shape[-2:]) != (job.height, job.width):
            raise SegueError(f"{self.model} rendered {tuple(video.shape)}, not {job.frames} "
                             f"frames of {job.width}x{job.height}.")
        if job.generate_audio and self.makes_audio:
            job.audio = self.family.render_audio(self.pipe, out, job)
        indices = self.family.frame_indices(video.shape[0], job.frames)
        frames = host_frames(video, indices, self.frames_batch)
        for n in range(len(indices)):
            started = time.perf_counter()
            frame = correct_ends(next(frames), n, job, self.ends)
            self.timer.add("to_frames", time.perf_counter() - started)
            yield frame
            job.progress(0.95 + 0.05 * (n + 1) / job.frames)

    def _generate(self, job: RenderJob) -> tuple[Any, Any]:
        """Run the pipeline: the video as a float tensor F×3×H×W in [0, 1], and the
        pipeline's output (which carries the audio of a model that makes sound)."""
        torch, _ = import_gpu_stack()
        kwargs = self.family.call_kwargs(self.pipe, job, prompt_for(job))
        kwargs.update(self._sampling_kwargs())
        kwargs.update(self.call_options)
        self._set_tiling(job.width, job.height)
        self.timer.start()
        failure = None
        try:
            if self.upscale is None:
                out = self._pass(job, kwargs, (0.0, 0.9), "denoise", "pt")
                video = out.frames[0]
            else:
                out, video = self._two_passes(job, kwargs)
        except Exception as exc:
            if not (is_oom(torch, exc) or is_fatal(exc)):
                raise
            failure = (is_oom(torch, exc), first_line(exc))
        if failure is not None:
            # Out of the except block, the traceback (and the GPU tensors its frames hold)
            # is gone, so emptying the cache really returns the memory.
            self._fail(job, *failure)
        self.timer.stop()
        job.progress(0.95)
        return video, out

    def _fail(self, job: RenderJob, oom: bool, error: str) -> None:
        """Free what the failed render held; raise the task's error, or ``EngineFault``
        when this process cannot render again (its worker then exits to be restarted)."""
        free_memory()
        what = f"{job.width}x{job.height}, {job.frames} frames with {self.model}"
        if not oom:
            raise EngineFault(f"The GPU failed rendering {what} ({error}). The worker "
                              "restarts; retry the task.")
        held = allocated_bytes() - self._baseline
        if held > LEAK_BYTES:
            raise EngineFault(
                f"The GPU ran out of memory rendering {what} ({error}) and "
                f"{held / 2**30:.1f} GiB could not be freed. The worker restarts; retry "
                "the task.")
        raise SegueError(
            f"The GPU ran out of memory rendering {what} ({error}). Try a lower resolution "
            "or a shorter video, or enable cpu_offload for this model (docs/gpu.md).",
            code="InternalServiceError",
        )

    def _pass(
        self, job: RenderJob, kwargs: dict[str, Any], span: tuple[float, float], stage: str,
        output_type: str,
    ) -> Any:
        """One pipeline call, seeded afresh, reporting its steps over ``span`` of progress."""
        torch, _ = import_gpu_stack()
        generator = torch.Generator("cpu").manual_seed(job.seed)
        self.timer.denoise_stage = stage
        return self.pipe(output_type=output_type, generator=generator,
                         callback_on_step_end=_progress_callback(job, self.timer, span),
                         **kwargs)

    def _two_passes(self, job: RenderJob, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """The latent upscaler recipe: latents at ``upscale_base`` of the size, 2x latent
        upsampling, a short refine pass at the upscaled size, then an exact resize."""
        up = self.upscale
        assert up is not None
        schedule = kwargs.get("timesteps") or kwargs.get("sigmas") or ()
        first = len(schedule) or kwargs["num_inference_steps"]
        split = 0.9 * first / (first + up.refine_steps)
        width, height = ltx.low_res_size(job, up)
        low = {**kwargs, "width": width, "height": height}
        self._set_tiling(2 * width, 2 * height)  # the refine pass decodes at the upscaled size
        first_pass = self._pass(job, low, (0.0, split), "denoise", "latent")
        latents = self.timer.measure("upsample", self.family.upsample, up, first_pass.frames)
        refine = self.family.refine_kwargs(up, low, first_pass, latents)
        out = self._pass(job, refine, (split, 0.9), "refine", "pt")
        return out, self.timer.measure("resize", ltx.fit, out.frames[0], job.width, job.height)

    def _sampling_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.sampling)
        steps = kwargs.pop("steps")
        timesteps = kwargs.pop("timesteps", None)
        sigmas = kwargs.pop("sigmas", None)
        if timesteps:
            kwargs["timesteps"] = list(timesteps)
        elif sigmas:
            kwargs["sigmas"] = list(sigmas)
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
        if hasattr(vae, "use_framewise_decoding"):
            # The LTX VAEs also tile in time (windows of frames), which diffusers leaves off;
            # Wan's VAE decodes frame by frame already.
            vae.use_framewise_decoding = bool(tile)


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
        for schedule in ("timesteps", "sigmas"):
            if schedule in sampling and len(sampling[schedule]) != steps:
                sampling.pop(schedule)
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


