"""Per-stage timing of a diffusers pipeline, for the diffusion engine and its benchmark."""

from __future__ import annotations

import time
from typing import Any


class StageTimer:
    """Seconds per stage of the last render: text_encode, image_encode, vae_encode, denoise,
    vae_decode, to_frames; with the latent upscaler also upsample, refine (the second
    pass's steps) and resize. It wraps the pipeline's own stage methods (not the transformer,
    so torch.compile sees nothing of it) and synchronises CUDA at each boundary, so the
    numbers are GPU time, not launch time. ``denoise`` runs from the end of the encoders
    to the last step; ``steps`` holds the seconds of each step."""

    STAGES = {"encode_prompt": "text_encode", "encode_image": "image_encode"}
    VAE_STAGES = {"encode": "vae_encode", "decode": "vae_decode"}

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.steps: list[float] = []
        self._mark = 0.0
        self._sync: Any = lambda: None
        self.denoise_stage = "denoise"

    def install(self, pipe: Any) -> None:
        import torch

        if torch.cuda.is_available():
            self._sync = torch.cuda.synchronize
        for attr, stage in self.STAGES.items():
            if hasattr(pipe, attr):
                setattr(pipe, attr, self._wrap(getattr(pipe, attr), stage))
        for attr, stage in self.VAE_STAGES.items():
            setattr(pipe.vae, attr, self._wrap(getattr(pipe.vae, attr), stage))

    def _wrap(self, method: Any, stage: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._sync()
            started = time.perf_counter()
            result = method(*args, **kwargs)
            self._sync()
            self._mark = time.perf_counter()
            self.add(stage, self._mark - started)
            return result

        return timed

    def measure(self, stage: str, fn: Any, *args: Any) -> Any:
        """Call ``fn(*args)`` timed as ``stage``."""
        return self._wrap(fn, stage)(*args)

    def start(self) -> None:
        self.seconds, self.steps = {}, []
        self._sync()
        self._mark = time.perf_counter()

    def step(self) -> None:
        self._sync()
        now = time.perf_counter()
        self.steps.append(now - self._mark)
        self.add(self.denoise_stage, now - self._mark)
        self._mark = now

    def stop(self) -> None:
        self._sync()
        self.add("pipeline_other", time.perf_counter() - self._mark)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
