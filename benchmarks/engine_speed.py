"""Speed and memory of a whole first/last-frame render with the flow engine.

A synthetic 1280×720 pair (a textured scene, a known camera pan and zoom, and an object that
moves on its own) is rendered to a 5 s, 24 fps clip. Every measurement runs in a fresh child
process so its peak RSS is its own (``os.wait4``); times are wall clock, median of ``--repeat``.

- ``generate``: the real ``segue generate`` command of this checkout (``python -m segue``);
- ``pipeline``: the same work in process: load PNGs -> fit to size -> FlowEngine.render ->
  VideoEncoder (product defaults);
- ``floor``: encoding the same 121 (or 121) ready frames with the product's encoder defaults;
- ``minterpolate``: FFmpeg's motion interpolation making the same frames (no encoding).

Usage (from the repository root)::

    python benchmarks/engine_speed.py [--repeat 5] [--mi-repeat 1]
        [--out benchmarks/results/engine_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"720p": (1248, 704), "1080p": (1920, 1088)}
FRAMES = 121  # 5 s at 24 fps, both ends included
MINTERPOLATE = "minterpolate=fps=120:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"


# --------------------------------------------------------------------------- the test pair


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Multi-octave coloured noise with shapes: detail at every scale, like a photograph."""
    img = np.zeros((h, w, 3), np.float32)
    for octave in range(1, 7):
        cells = (max(2, h >> (8 - octave)), max(2, w >> (8 - octave)))
        noise = rng.random((*cells, 3)).astype(np.float32)
        img += cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC) / octave
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    for _ in range(60):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), int(rng.integers(8, 60)), color, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(10, 120)),
                                        y + int(rng.integers(10, 80))), color, -1)
    return img


def make_pair(width: int = 1280, height: int = 720, seed: int = 7) -> tuple[np.ndarray, ...]:
    """First and last frames: camera pans 48 px and zooms 4 %, a disc moves 120 px."""
    rng = np.random.default_rng(seed)
    scene = _texture(rng, height + 200, width + 300)
    sprite = _texture(rng, 161, 161)
    mask = np.zeros((161, 161), np.uint8)
    cv2.circle(mask, (80, 80), 78, 255, -1, cv2.LINE_AA)
    frames = []
    for t, (dx, zoom, ox) in enumerate(((0.0, 1.0, 0), (48.0, 1.04, 120))):
        m = np.float32([[zoom, 0, -150 - dx - (zoom - 1) * width / 2],
                        [0, zoom, -100 - (zoom - 1) * height / 2]])
        view = cv2.warpAffine(scene, m, (width, height), flags=cv2.INTER_CUBIC)
        x, y = 300 + ox, 250 + 30 * t
        roi = view[y:y + 161, x:x + 161]
        alpha = (mask[..., None] / 255.0).astype(np.float32)
        roi[:] = (alpha * sprite + (1 - alpha) * roi).astype(np.uint8)
        frames.append(view)
    return frames[0], frames[1]


# --------------------------------------------------------------------------- workers


def worker(kind: str, first: Path, last: Path, size: str, out: Path, preset: str) -> None:
    """One measured job, run in its own process; prints its wall time in seconds."""
    from PIL import Image

    from segue.domain import Mode
    from segue.engines.base import RenderJob
    from segue.engines.flow import FlowEngine
    from segue.media.images import fit_to
    from segue.media.video import VideoEncoder

    width, height = SIZES[size]
    start = time.perf_counter()
    a = fit_to(Image.open(first), width, height)
    b = fit_to(Image.open(last), width, height)
    job = RenderJob(prompt="", mode=Mode.FIRST_LAST, width=width, height=height,
                    frames=FRAMES, seed=1, first=a, last=b)
    frames = FlowEngine(preset=preset).render(job)
    if kind == "floor":
        frames = list(frames)  # ready frames: only the encoding below is timed
        start = time.perf_counter()
    with VideoEncoder(out, width, height, FRAMES) as enc:
        for frame in frames:
            enc.write(frame)
    print(f"{time.perf_counter() - start:.4f}")


def _measure(cmd: list[str], timed_by_child: bool) -> tuple[float, float, float]:
    """(seconds, peak RSS in MB, CPU seconds) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    seconds = float(out.strip().splitlines()[-1]) if timed_by_child else wall
    return seconds, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def _commands(tmp: Path, size: str, preset: str) -> dict[str, tuple[list[str], bool]]:
    first, last, out = tmp / "first.png", tmp / "last.png", tmp / f"out-{size}.mp4"
    me = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    cmds = {
        "floor": ([*me, "floor", str(first), str(last), size, str(out), preset], True),
        "pipeline": ([*me, "pipeline", str(first), str(last), size, str(out), preset], True),
    }
    segue = [sys.executable, "-m", "segue"]  # this checkout's CLI (the cwd is the repo root)
    if preset == "medium" and _has_generate(segue):  # the CLI uses the engine's default
        cmds["generate"] = ([*segue, "generate", "--first", str(first), "--last", str(last),
                             "--prompt", "benchmark", "--resolution", size, "--ratio", "16:9",
                             "--duration", "5", "-o", str(out)], False)
    return cmds


def _has_generate(segue: list[str]) -> bool:
    probe = subprocess.run([*segue, "generate", "--help"], capture_output=True, cwd=ROOT)
    return probe.returncode == 0


def _minterpolate_cmd(tmp: Path, size: str) -> list[str]:
    width, height = SIZES[size]
    vf = (f"scale={width}:{height}:force_original_aspect_ratio=increase,"
          f"crop={width}:{height},{MINTERPOLATE}")
    return ["ffmpeg", "-v", "error", "-framerate", "1", "-start_number", "0",
            "-i", str(tmp / "seq%d.png"), "-vf", vf, "-frames:v", str(FRAMES), "-f", "null", "-"]


def run(repeat: int, mi_repeat: int, sizes: list[str], preset: str) -> dict[str, object]:
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "frames": FRAMES,
        "repeat": repeat, "cpus": _cpus(), "preset": preset,
        "load_before": os.getloadavg()[0],
    }
    # Segue's modules compiled once, as an installed package is: with PYTHONDONTWRITEBYTECODE
    # set (as some environments do) every child would compile them again (~20 ms each).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "segue")], check=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        first, last = make_pair()
        for name, img in (("first", first), ("last", last), ("seq0", first), ("seq1", last),
                          ("seq2", last)):
            cv2.imwrite(str(tmp / f"{name}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        for size in sizes:
            cmds = _commands(tmp, size, preset).items()
            jobs = {k: (c, child, repeat) for k, (c, child) in cmds}
            if mi_repeat and size == "720p":
                jobs["minterpolate"] = (_minterpolate_cmd(tmp, size), False, mi_repeat)
            row = {}
            for name, (cmd, child, n) in jobs.items():
                row[name] = {**summarise([_measure(cmd, child) for _ in range(n)]), "runs": n}
                print(f"{size} {name:>12}: {row[name]['seconds']:.2f} s "
                      f"(CPU {row[name]['cpu_seconds']:.2f} s), "
                      f"peak RSS {row[name]['peak_rss_mb']:.0f} MB", flush=True)
            results[size] = row
    results["load_after"] = os.getloadavg()[0]
    return results


def summarise(runs: list[tuple[float, float, float]]) -> dict[str, object]:
    """One job's repeated ``_measure`` results: median seconds and CPU, the largest RSS."""
    return {"seconds": statistics.median(r[0] for r in runs),
            "all_seconds": [round(r[0], 3) for r in runs],
            "cpu_seconds": statistics.median(r[2] for r in runs),
            "peak_rss_mb": max(r[1] for r in runs)}


def table_rows(size: str, row: dict[str, object]) -> list[str]:
    """The report's line for each job of ``row`` (``summarise``'s dicts), against its floor."""
    floor = row["floor"]["seconds"]  # type: ignore[index]
    return [f"| {size} | {name} | {r['seconds']:.2f} | {r['seconds'] / floor:.2f} | "
            f"{r['cpu_seconds']:.2f} | {r['peak_rss_mb']:.0f} |"
            for name, r in row.items() if isinstance(r, dict)]


def speed_table(results: dict[str, object], intro: str,
                more: Callable[[str, dict[str, Any]], list[str]]) -> str:
    """``intro``, then a markdown table of every size's jobs against the encode-only floor
    of the same run, each size followed by its ``more(size, row)`` lines."""
    lines = [intro, "", "| size | job | seconds | × floor | CPU s | peak RSS MB |",
             "|---|---|---|---|---|---|"]
    for size in SIZES:
        row = results.get(size)
        if not isinstance(row, dict):
            continue
        lines += table_rows(size, row)
        lines += more(size, row)
    return "\n".join(lines)


def report(results: dict[str, object]) -> str:
    """A markdown table: every job against the encode-only floor of the same run."""
    def ratio(size: str, row: dict[str, Any]) -> list[str]:
        if "minterpolate" not in row or "generate" not in row:
            return []
        return [f"| {size} | minterpolate ÷ generate | "
                f"{row['minterpolate']['seconds'] / row['generate']['seconds']:.1f}× | | | |"]

    return speed_table(
        results, f"{results['date']}, {results['cpus']} CPUs, preset `{results['preset']}`, "
        f"load average {results['load_before']:.2f} before / {results['load_after']:.2f} "
        f"after; median of {results['repeat']}.", ratio)


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(ROOT))
        kind, first, last, size, out, preset = sys.argv[2:8]
        worker(kind, Path(first), Path(last), size, Path(out), preset)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mi-repeat", type=int, default=1, help="minterpolate runs (0: skip)")
    parser.add_argument("--sizes", default="720p,1080p")
    parser.add_argument("--preset", default="medium", help="flow engine preset")
    parser.add_argument("--out", type=Path, default=None, help="write JSON (and .md) here")
    args = parser.parse_args()
    results = run(args.repeat, args.mi_repeat, args.sizes.split(","), args.preset)
    print(report(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(report(results) + "\n")


if __name__ == "__main__":
    main()
