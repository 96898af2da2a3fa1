"""One render, from input images to files on disk: shared by the worker and ``segue generate``.

    images -> crop and resize to the output size -> engine frames -> H.264 MP4 (+ last PNG)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from segue.domain import (
    ADAPTIVE,
    KEYFRAME,
    GenerationRequest,
    keyframe_index,
    nearest_ratio,
    output_size,
    tokens_for,
)
from segue.engines.base import Engine, RenderJob
from segue.media.images import crop_to_aspect, fit_to, image_aspect

if TYPE_CHECKING:  # imported by the encoder's thread when a render starts (``_Encoder``)
    from segue.media.video import VideoEncoder

# progress(fraction 0..1, eta seconds or None)
Progress = Callable[[float, float | None], None]


@dataclass(frozen=True)
class RenderOutput:
    video: Path
    last_frame: Path | None
    width: int
    height: int
    ratio: str
    frames: int
    tokens: int
    seconds: float
    audio: bool = False  # the MP4 carries an AAC sound track


def resolve_ratio(request: GenerationRequest, first: Image.Image | None) -> str:
    if request.ratio != ADAPTIVE:
        return request.ratio
    return nearest_ratio(image_aspect(first)) if first is not None else "16:9"


Images = list[tuple[str, Image.Image]]  # (role, image) in request order


def make_job(request: GenerationRequest, images: Images) -> tuple[RenderJob, str]:
    """The engine's job at the output size, and the ratio actually used."""
    by_role = dict(images)
    first = by_role.get("first_frame") or by_role.get("")
    last = by_role.get("last_frame")
    ratio = resolve_ratio(request, first)
    width, height = output_size(request.resolution, ratio)
    if request.width and request.height:  # an exact size asked for
        width, height = request.width, request.height
    if first is not None and last is not None:
        # the first frame governs: a last frame of another aspect is cropped to it
        last = crop_to_aspect(last, image_aspect(first))
    references = [fit_to(im, width, height) for role, im in images if role == "reference_image"]
    keyframes = _keyframes(request, images, first, width, height)
    with ThreadPoolExecutor(1, thread_name_prefix="segue-fit") as pool:
        # the last frame is resized while the first is (Pillow lets go of the GIL): about
        # 20 ms at 720p before the first frame, when the other core has nothing to do
        fit_last = pool.submit(fit_to, last, width, height) if last is not None else None
        fit_first = fit_to(first, width, height) if first is not None else None
        job = RenderJob(
            prompt=request.prompt, mode=request.mode, width=width, height=height,
            frames=request.frames, seed=request.seed, fps=request.fps,
            camera_fixed=request.camera_fixed, first=fit_first,
            last=fit_last.result() if fit_last is not None else None, references=references,
            generate_audio=request.generate_audio, draft=request.draft, keyframes=keyframes,
        )
    return job, ratio


def _keyframes(request: GenerationRequest, images: Images, first: Image.Image | None,
               width: int, height: int) -> list[tuple[int, np.ndarray]]:
    """The keyframes at the output size with their frame indices, in frame order; like the
    last frame, each is cropped to the first frame's aspect. ``images`` follows
    ``request.images``, which carries the times."""
    if not request.keyframes:
        return []
    placed = []
    for given, (role, image) in zip(request.images, images, strict=True):
        if role != KEYFRAME:
            continue
        if first is not None:
            image = crop_to_aspect(image, image_aspect(first))
        placed.append((keyframe_index(given.time or 0.0, request.fps),
                       fit_to(image, width, height)))
    return sorted(placed, key=lambda item: item[0])


def render_video(
    request: GenerationRequest, engine: Engine, images: Images, workdir: Path,
    *, progress: Progress | None = None, crf: int = 18, preset: str = "veryfast",
    encoder: str = "libx264",
) -> RenderOutput:
    """Render ``request`` into ``workdir/video.mp4`` (and ``last_frame.png`` when asked).

    ``encoder`` is a codec name or ``SEGUE_VIDEO_ENCODER``'s ``auto`` (``pick_encoder``)."""
    started = time.monotonic()
    job, ratio = make_job(request, images)

    def report(fraction: float) -> None:
        if progress is not None:
            elapsed = time.monotonic() - started
            eta = elapsed * (1 - fraction) / fraction if fraction > 0.02 else None
            progress(min(fraction, 0.99), eta)

    job.progress = report
    video_path, last_path = workdir / f"video.{request.output_format}", None
    sound = job.generate_audio and getattr(engine, "makes_audio", False)

    def open_encoder() -> VideoEncoder:
        from segue.media.video import VideoEncoder, pick_encoder

        return VideoEncoder(video_path, job.width, job.height, job.frames, fps=job.fps,
                            crf=crf, preset=preset, audio=sound, codec=pick_encoder(encoder),
                            container=request.output_format)

    with _Encoder(open_encoder) as video:
        for index, frame in enumerate(engine.render(job)):
            if index == job.frames - 1 and request.return_last_frame:
                from segue.media.video import write_png

                last_path = workdir / "last_frame.png"
                write_png(frame, last_path)  # the last frame is returned without watermark
            if request.watermark:
                from segue.media.video import watermark

                frame = watermark(frame)
            video.write(frame)
        if job.audio is not None and sound:
            video.opened().add_audio(job.audio.samples, job.audio.rate)
    if progress is not None:
        progress(1.0, 0.0)
    return RenderOutput(
        video=video_path, last_frame=last_path, width=job.width, height=job.height,
        ratio=ratio, frames=job.frames, tokens=tokens_for(job.width, job.height, job.frames),
        seconds=time.monotonic() - started, audio=sound,
    )


class _Encoder:
    """The video encoder, opened in a thread while the engine makes its first frames.

    Why: opening it first imports PyAV (``segue.media.video``), about 50 ms of one core at
    the start of a ``segue generate``, while the engine could already be at work: the flow
    engine gives its first frame at once and then analyses the pair, mostly in OpenCV,
    which lets go of the GIL. The frames made before the encoder is open wait for it (at
    most ``HELD`` of them, so that a quick engine does not pile frames up in memory).

    Errors are those of opening before rendering: the opening's own comes first, and a
    render that fails leaves no partial file (``VideoEncoder``'s rules).
    """

    HELD = 2

    def __init__(self, open_encoder: Callable[[], VideoEncoder]) -> None:
        pool = ThreadPoolExecutor(1, thread_name_prefix="segue-encoder")
        self._opening = pool.submit(open_encoder)
        pool.shutdown(wait=False)  # its thread ends once the encoder is open
        self._held: list[np.ndarray] = []

    def write(self, frame: np.ndarray) -> None:
        if len(self._held) < self.HELD and not self._opening.done():
            self._held.append(frame)
            return
        self.opened().write(frame)

    def opened(self) -> VideoEncoder:
        """The encoder once open, with the frames that waited for it written."""
        encoder = self._opening.result()
        while self._held:
            encoder.write(self._held.pop(0))
        return encoder

    def __enter__(self) -> _Encoder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        encoder = self._opening.result()  # waits; raises the opening's error first
        if exc_type is not None:
            encoder.__exit__(exc_type, exc, tb)  # deletes the partial file
            return
        with encoder:  # closes the file, or deletes it when the last writes fail
            self.opened()
