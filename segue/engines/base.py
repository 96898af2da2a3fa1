"""The engine seam: one small protocol, one registry.

An engine turns a ``RenderJob`` (prompt, size, frame count, seed and the input
images already cropped and resized to the output size) into frames. It yields
frames one at a time, first to last, so that the encoder never holds the whole
video in memory. It reports progress through ``job.progress(fraction)``; that
call raises ``segue.errors.TaskInterrupted`` when the task was cancelled or
expired, and the engine lets it propagate (it must not catch it).

An engine that makes sound (``makes_audio``) and is asked for it (``job.generate_audio``)
leaves the track in ``job.audio`` before it yields the first frame; the encoder muxes it.

A job with ``keyframes`` (a storyboard) has frames fixed between the first and the last;
an engine that places them declares ``max_keyframes``, and the others are never given one.

A job with ``draft`` set asks for the engine's fastest settings (a 480p look before the
final). ``generate_audio`` is only ever set for an engine whose ``makes_audio`` is True;
requests for sound, or for reference media an engine does not list in ``inputs``, are
refused before a task is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from segue.domain import Mode
from segue.errors import SegueError

ProgressFn = Callable[[float], None]


def _no_progress(fraction: float) -> None:
    return None


class EngineFault(SegueError):
    """The engine cannot render again in this process (a lost CUDA context, memory that
    cannot be reclaimed): the task fails with this message and the worker process exits,
    for its supervisor to start a fresh one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="InternalServiceError")


@dataclass(frozen=True)
class AudioTrack:
    """A waveform: channels × samples float32 in [-1, 1] at ``rate`` samples a second."""

    samples: np.ndarray
    rate: int


@dataclass
class RenderJob:
    prompt: str
    mode: Mode
    width: int
    height: int
    frames: int
    seed: int
    fps: int = 24
    camera_fixed: bool = False
    first: np.ndarray | None = None  # H×W×3 uint8 RGB at (height, width)
    last: np.ndarray | None = None
    references: list[np.ndarray] = field(default_factory=list)
    # (output frame index, H×W×3 image) between the ends, in frame order; only for an engine
    # whose ``max_keyframes`` allows that many
    keyframes: list[tuple[int, np.ndarray]] = field(default_factory=list)
    progress: ProgressFn = _no_progress
    generate_audio: bool = False  # only ever True for an engine whose makes_audio is True
    draft: bool = False  # render with the engine's fastest settings (a 480p draft)
    audio: AudioTrack | None = None  # set by an engine that makes sound, when asked


class Engine(Protocol):
    """Renders frames. Implementations live one per module in ``segue.engines``."""

    name: str
    modes: frozenset[Mode]  # the modes this engine can render
    makes_audio: bool  # renders a sound track with the video when asked

    def render(self, job: RenderJob) -> Iterator[np.ndarray]:
        """Yield exactly ``job.frames`` H×W×3 uint8 RGB frames of ``job`` size."""
        ...


# What the CPU engines choose for duration -1: the Seedance 1.x default length.
AUTO_SECONDS = 5


def auto_seconds(engine: object) -> int:
    """The length an engine picks when a request leaves it the choice (duration -1).

    An engine may declare ``auto_seconds``; the others take ``AUTO_SECONDS``.
    """
    return int(getattr(engine, "auto_seconds", AUTO_SECONDS))


def makes_audio(engine: object) -> bool:
    return bool(getattr(engine, "makes_audio", False))


def engine_inputs(engine: object) -> frozenset[str]:
    """The reference media roles (``reference_video``, ``reference_audio``) an engine uses.

    An engine declares them in an ``inputs`` attribute; none of the built-in engines does.
    """
    return frozenset(getattr(engine, "inputs", ()))


EngineFactory = Callable[[dict[str, object]], Engine]
_FACTORIES: dict[str, str] = {
    # name -> "module:factory"; imported only when first used, so that the CPU
    # install never imports torch.
    "blend": "segue.engines.blend:BlendEngine",
    "flow": "segue.engines.flow:FlowEngine",
    "rife": "segue.engines.rife:RifeEngine",
    "diffusion": "segue.engines.diffusion:DiffusionEngine",
    "ark": "segue.engines.ark:ArkEngine",
}


def engine_names() -> list[str]:
    return sorted(_FACTORIES)


def create_engine(name: str, options: dict[str, object] | None = None) -> Engine:
    """Build the engine called ``name`` with its registry options."""
    import importlib

    try:
        module_name, attr = _FACTORIES[name].split(":")
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(engine_names())}") from None
    factory = getattr(importlib.import_module(module_name), attr)
    engine: Engine = factory(**(options or {}))
    return engine
