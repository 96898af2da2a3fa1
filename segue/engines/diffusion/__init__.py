"""The ``diffusion`` engine: open keyframe video models through ``diffusers``, one module
per model family (``ltx``: LTX-Video 0.9; ``ltx2``: LTX-2 with sound; ``wan``: Wan 2.1 and
2.2). The engine itself is in ``engine``; torch and diffusers are imported only when a
model loads, so importing this package is free on a CPU-only install.
"""

from segue.engines.diffusion.engine import CAMERA_FIXED_INSTRUCTION, DiffusionEngine, prompt_for

__all__ = ["CAMERA_FIXED_INSTRUCTION", "DiffusionEngine", "prompt_for"]
