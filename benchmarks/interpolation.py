"""Interpolation quality benchmark: the flow engine against a linear blend and FFmpeg.

For every triplet in the development set (``<Seq>/first.png``, ``last.png`` and
``gt_t<t>.png`` for each time listed in ``meta.json``) it renders the in-between frames with
three methods and scores them against the ground truth:

- PSNR in dB on uint8 RGB over the whole frame (averaged over frames, then sequences);
- IE, the mean absolute difference on 0-255 over all pixels and channels.

Usage (from the repository root)::

    python benchmarks/interpolation.py [--data ../shared/data/interp-dev] [--preset medium]
        [--out benchmarks/results/interpolation.json] [--no-ffmpeg]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segue.engines.flow import interpolate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MINTERPOLATE = "minterpolate=fps={fps}:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ie(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def blend(first: np.ndarray, last: np.ndarray, times: list[float]) -> list[np.ndarray]:
    a, b = first.astype(np.float32), last.astype(np.float32)
    return [np.rint(a + (b - a) * t).astype(np.uint8) for t in times]


def minterpolate(first: np.ndarray, last: np.ndarray, times: list[float],
                 ffmpeg: str = "ffmpeg") -> list[np.ndarray]:
    """FFmpeg motion-compensated interpolation of the pair (yuv444p, so no chroma loss).

    The pair becomes a 1 fps two-frame clip; minterpolate resamples it to ``steps`` fps, so the
    output frame k sits at t = k/steps. ``times`` must lie on that grid (here: t·steps whole).
    """
    steps = _grid_steps(times)
    hgt, w = first.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        # the last frame is repeated: minterpolate emits nothing for a bare two-frame clip
        for i, img in enumerate((first, last, last)):
            cv2.imwrite(f"{tmp}/{i}.png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        vf = f"format=yuv444p,{MINTERPOLATE.format(fps=steps)},format=rgb24"
        cmd = [ffmpeg, "-v", "error", "-framerate", "1", "-start_number", "0",
               "-i", f"{tmp}/%d.png", "-vf", vf, "-frames:v", str(steps + 1), "-f", "rawvideo", "-"]
        raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, hgt, w, 3)
    return [frames[round(t * steps)] for t in times]


def _grid_steps(times: list[float]) -> int:
    for steps in (2, 4, 8, 10, 16, 20, 24, 32, 40, 48, 60, 64, 120):
        if all(abs(t * steps - round(t * steps)) < 1e-6 for t in times):
            return steps
    raise ValueError(f"times {times} are not on a simple grid")


def load_set(data: Path) -> list[tuple[str, np.ndarray, np.ndarray, dict[float, np.ndarray]]]:
    """Each sequence: name, first, last and ground truth by time."""
    items = []
    for meta_path in sorted(data.glob("*/*/meta.json")):
        seq = meta_path.parent
        meta = json.loads(meta_path.read_text())
        gts = {float(t): read_rgb(seq / f"gt_t{float(t):.4f}.png") for t in meta["t"]}
        items.append((seq.name, read_rgb(seq / "first.png"), read_rgb(seq / "last.png"), gts))
    if not items:
        raise SystemExit(f"no */*/meta.json triplets under {data}")
    return items


def run(data: Path, preset: str, use_ffmpeg: bool) -> dict[str, object]:
    methods = {"blend": blend, "flow": lambda a, b, ts: interpolate(a, b, ts, preset=preset)}
    if use_ffmpeg:
        methods["minterpolate"] = minterpolate
    per_seq: dict[str, dict[str, dict[str, float]]] = {}
    seconds = dict.fromkeys(methods, 0.0)
    for name, first, last, gts in load_set(data):
        times = sorted(gts)
        per_seq[name] = {}
        for method, fn in methods.items():
            start = time.perf_counter()
            out = fn(first, last, times)
            seconds[method] += time.perf_counter() - start
            per_seq[name][method] = {
                "psnr": float(np.mean([psnr(o, gts[t]) for o, t in zip(out, times, strict=True)])),
                "ie": float(np.mean([ie(o, gts[t]) for o, t in zip(out, times, strict=True)])),
            }
    summary = {
        m: {"psnr": float(np.mean([s[m]["psnr"] for s in per_seq.values()])),
            "ie": float(np.mean([s[m]["ie"] for s in per_seq.values()])),
            "seconds": seconds[m]}
        for m in methods
    }
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "dataset": data.name, "sequences": len(per_seq), "preset": preset,
            "machine": {"cpus": _cpus(), "python": platform.python_version(),
                        "opencv": cv2.__version__, "load_average": os.getloadavg()[0]},
            "summary": summary, "per_sequence": per_seq}


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def report(result: dict[str, object]) -> str:
    machine = result["machine"]
    lines = [f"{result['date']}, preset `{result['preset']}`, {result['sequences']} sequences, "
             f"PSNR dB / IE (load average {machine['load_average']:.2f}; times do not "
             "matter here).", "",
             "| sequence | " + " | ".join(result["summary"]) + " |",
             "|---|" + "---|" * len(result["summary"])]
    for name, scores in result["per_sequence"].items():
        cells = [f"{s['psnr']:.2f} / {s['ie']:.2f}" for s in scores.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cells = [f"**{s['psnr']:.2f} / {s['ie']:.2f}**" for s in result["summary"].values()]
    lines.append("| **mean** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "../shared/data/interp-dev")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--out", type=Path, default=None, help="write JSON (and .md) results")
    parser.add_argument("--no-ffmpeg", action="store_true", help="skip the minterpolate baseline")
    args = parser.parse_args()
    result = run(args.data.resolve(), args.preset, not args.no_ffmpeg)
    text = report(result)
    print("PSNR dB / IE per method\n" + text)
    for m, s in result["summary"].items():
        print(f"{m:>13}: {s['psnr']:.2f} dB  IE {s['ie']:.2f}  ({s['seconds']:.2f} s)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text + "\n")


if __name__ == "__main__":
    main()
