"""Seconds per stage for a 5 s video through the diffusion engine, on one GPU.

Weights cannot be downloaded where this was written, so every model is built from its
published configuration with random weights, directly on the GPU in bfloat16. Speed and
memory do not depend on weight values; the frames are noise, the timings are real.
Pass ``--weights DIR`` to time real weights from a diffusers folder instead.

    # everything docs/gpu.md asks for, most wanted first, in one call of at most 9 minutes:
    python benchmarks/gpu_speed.py --plan all --time-limit 480 \
        --out benchmarks/results/gpu_speed.md
    python benchmarks/gpu_speed.py --models ltx2-distilled --resolutions 480p 720p 1080p \
        --compile both --out benchmarks/results/gpu_speed.md
    python benchmarks/gpu_speed.py --tiny      # the same code path on the CPU, in seconds

Rows are appended as they are measured, so a run cut short keeps what it measured; no new
configuration starts after ``--time-limit`` seconds.

Each configuration renders once to warm up (and compile), then ``--runs`` times measured;
the table shows the median of the measured runs (how many in its ``runs`` column): text
encode, VAE encode, denoise, VAE decode, H.264 encode, end to end, and peak GPU memory.
"""

from __future__ import annotations

import argparse
import gc
import io
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's segue

from gpu_models import MODELS, TINY, build_pipeline  # noqa: E402

from segue.domain import SIZES, Mode, frames_for  # noqa: E402
from segue.engines.base import RenderJob  # noqa: E402
from segue.engines.diffusion import DiffusionEngine  # noqa: E402
from segue.engines.diffusion.frames import BATCH  # noqa: E402
from segue.media.video import HARDWARE_ENCODER, encoder_options  # noqa: E402


def keyframes(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    first = np.broadcast_to((x + y) / 2, (height, width, 3)).astype(np.uint8)
    return first, (255 - first).copy()


# H.264 encoders the benchmark can time: libx264, and NVIDIA's hardware encoder where the
# machine's FFmpeg (PyAV's wheels carry h264_nvenc) and driver offer it.
ENCODERS = ("libx264", HARDWARE_ENCODER)


def h264_sink(width: int, height: int, encoder: str = "libx264") -> tuple[Any, Any, Any]:
    """An in-memory H.264 encoder with the service's options (``SEGUE_VIDEO_ENCODER``, crf
    18, veryfast: ``encoder_options``), yuv420p at 24 fps."""
    import av

    container = av.open(io.BytesIO(), mode="w", format="mp4")
    stream = container.add_stream(encoder, rate=24)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = encoder_options(encoder, 18, "veryfast")
    return container, stream, av.VideoFrame


def timed_render(engine: DiffusionEngine, job: RenderJob,
                 encoder: str = "libx264") -> dict[str, float]:
    """One render consumed by the H.264 encoder; seconds per stage and peak memory."""
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    container, stream, video_frame = h264_sink(job.width, job.height, encoder)
    encode = 0.0
    started = time.perf_counter()
    for frame in engine.render(job):
        t = time.perf_counter()
        for packet in stream.encode(video_frame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
        encode += time.perf_counter() - t
    t = time.perf_counter()
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    encode += time.perf_counter() - t
    result = dict(engine.timer.seconds, h264_encode=encode, total=time.perf_counter() - started)
    result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return result


COLUMNS = ("text_encode", "image_encode", "vae_encode", "denoise", "vae_decode", "to_frames",
           "h264_encode", "total", "peak_gib")


def row(model: str, size: str, frames: int, steps: int, r: dict[str, float], runs: int) -> str:
    cells = [f"{r.get(c, 0.0):.2f}" for c in COLUMNS]
    return f"| {model} | {size} | {frames} | {steps} | {runs} | " + " | ".join(cells) + " |"


def header(device: str) -> str:
    import diffusers
    import torch

    cols = " | ".join(COLUMNS)
    return (
        f"\nDevice: {device}; torch {torch.__version__}, diffusers {diffusers.__version__}, "
        f"Python {platform.python_version()}. Random weights from the published configs.\n\n"
        f"| model | size | frames | steps | runs | {cols} |\n|" + "---|" * (5 + len(COLUMNS))
    )


class Item(NamedTuple):
    """One configuration of the plan: a model at some sizes, with engine options."""

    model: str
    resolutions: tuple[str, ...]
    compiled: bool = False
    steps: int | None = None  # None: the model's own
    frames_batch: int = BATCH  # 0: frames converted one by one (before batching)
    encoder: str = "libx264"
    vae_tiling: bool | str = "auto"

    def label(self) -> str:
        notes = [n for n, on in (("compiled", self.compiled),
                                 ("frames one by one", self.frames_batch == 0),
                                 (self.encoder, self.encoder != "libx264"),
                                 (f"vae_tiling {self.vae_tiling}", self.vae_tiling != "auto"))
                 if on]
        return self.model + (f" ({', '.join(notes)})" if notes else "")


# The whole measurement of docs/gpu.md in one call (``--plan all``), most wanted first, so
# that a 15-minute lease that runs out still records the rows that matter most: the 2B
# model's 720p row before and after batched frames (the previous figure, measured in the
# same lease), with NVENC, compiled; the 13B model's 1080p with and without VAE tiling; then
# LTX-2 with sound, and Wan's seconds per 720p step with guidance (two steps: the full
# count's time is that times its steps). The 14B Wan models' full-step rows need a long lease.
PLAN: list[Item] = [
    Item("ltx-2b-distilled", ("720p",), frames_batch=0),
    Item("ltx-2b-distilled", ("720p",)),
    Item("ltx-2b-distilled", ("720p",), encoder="h264_nvenc"),
    Item("ltx-2b-distilled", ("720p",), compiled=True, encoder="h264_nvenc"),
    Item("ltx-13b-distilled", ("1080p",)),
    Item("ltx-13b-distilled", ("1080p",), vae_tiling=False),
    Item("ltx2-distilled", ("720p",)),
    Item("wan2.2-i2v-a14b", ("720p",), steps=2),
    Item("ltx-13b-distilled", ("1080p",), compiled=True, vae_tiling=False),
    Item("ltx2-distilled", ("720p",), compiled=True, encoder="h264_nvenc"),
    Item("ltx-2b-distilled", ("480p", "1080p")),
    Item("wan2.1-flf2v-14b", ("480p",), steps=2),
    Item("ltx2-full", ("720p",)),
    Item("wan2.2-i2v-a14b", ("720p",)),
]


def planned(args: argparse.Namespace) -> list[Item]:
    if args.tiny:
        return [Item(name, ("tiny",), frames_batch=args.frames_batch) for name in TINY]
    if args.plan == "all":
        return PLAN
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    return [Item(m, tuple(args.resolutions), c, args.steps, args.frames_batch, args.encoder,
                 args.vae_tiling) for m in args.models for c in compiles]


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    args = parse_args(argv)
    import torch

    deadline = time.monotonic() + args.time_limit
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({platform.processor()})"
    emit(args.out, header(name))
    results: list[dict[str, float]] = []
    for item in planned(args):
        if time.monotonic() > deadline:
            emit(args.out, f"\nStopped at the time limit ({args.time_limit:.0f} s) before "
                           f"{item.label()} {'/'.join(item.resolutions)}.")
            break
        try:
            results += measure(args, item, device, deadline)
        except Exception as exc:  # one model failing (e.g. out of memory) must not end the run
            traceback.print_exc()
            emit(args.out, f"| {item.label()} | {'/'.join(item.resolutions)} | failed: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]} |")
        gc.collect()  # the last model's weights go before the next one is built
        if device == "cuda":
            torch.cuda.empty_cache()
    return results


def measure(args: argparse.Namespace, item: Item, device: str,
            deadline: float) -> list[dict[str, float]]:
    model = item.model
    spec = TINY[model] if args.tiny else MODELS[model]
    engine = DiffusionEngine(
        family=spec["family"], model=args.weights or model, variant=spec["variant"],
        steps=2 if args.tiny else item.steps, device=device, compile=item.compiled,
        attention_backend=args.attention, step_cache=args.step_cache,
        cpu_offload=args.cpu_offload, call_options=spec.get("call_options"),
        frames_batch=item.frames_batch, vae_tiling=item.vae_tiling,
    )
    if args.weights:
        engine.load()
    else:
        engine.use_pipeline(build_pipeline(spec, args.tiny, device), device)
    results = []
    for label in item.resolutions:
        if results and time.monotonic() > deadline:
            emit(args.out, f"\nStopped at the time limit before {model} {label}.")
            break
        width, height = (64, 64) if args.tiny else SIZES[label]["16:9"]
        frames = 9 if args.tiny else frames_for(args.duration)
        first, last = keyframes(width, height)
        job = RenderJob(prompt="a cat walks on the beach at sunset", mode=Mode.FIRST_LAST,
                        width=width, height=height, frames=frames, seed=0,
                        first=first, last=last, generate_audio=engine.makes_audio)
        timed_render(engine, job, item.encoder)  # warms up (and compiles)
        runs = []
        for _ in range(args.runs):
            runs.append(timed_render(engine, job, item.encoder))
            if time.monotonic() > deadline:
                break
        result = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
        emit(args.out, row(item.label(), f"{label} {width}x{height}", frames,
                           len(engine.timer.steps), result, len(runs)))
        results.append(dict(result, model=model, width=width, height=height))
    return results


def emit(out: str | None, line: str) -> None:
    """Print a row and append it to the results file at once (a cut-off run keeps it)."""
    print(line, flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--plan", choices=["all"], default=None,
                   help="the whole measurement of docs/gpu.md, most wanted first")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["ltx-2b-distilled"])
    p.add_argument("--resolutions", nargs="+", choices=list(SIZES), default=["720p"])
    p.add_argument("--duration", type=int, default=5, help="seconds of video (24 fps)")
    p.add_argument("--steps", type=int, default=None, help="default: the model's own")
    p.add_argument("--runs", type=int, default=1, help="measured runs after the warm-up")
    p.add_argument("--compile", choices=["off", "on", "both"], default="off",
                   help="torch.compile the transformer (both: a row each way)")
    p.add_argument("--attention", default=None, help="diffusers attention backend, e.g. flash")
    p.add_argument("--step-cache", type=float, default=None, help="first-block cache threshold")
    p.add_argument("--cpu-offload", action="store_true", help="for models beyond GPU memory")
    p.add_argument("--weights", default=None, help="a diffusers folder of real weights")
    p.add_argument("--frames-batch", type=int, default=BATCH,
                   help="frames converted on the device at once (0: one by one, as before)")
    p.add_argument("--encoder", choices=sorted(ENCODERS), default="libx264")
    p.add_argument("--vae-tiling", default="auto", help="auto, true or false",
                   type=lambda v: {"true": True, "false": False}.get(v, v))
    p.add_argument("--tiny", action="store_true", help="tiny random models on the CPU")
    p.add_argument("--time-limit", type=float, default=540.0,
                   help="seconds; no new configuration starts after this")
    p.add_argument("--out", default=None, help="append the markdown rows to this file")
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
