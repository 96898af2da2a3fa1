"""Speed and memory of ``segue generate --model segue-rife`` beside the flow engine and the
encoder's floor, on the synthetic 720p pair of ``engine_speed.py``, in the same run.

Every job runs in a fresh child process (peak RSS its own, ``os.wait4``); wall clock, median
of ``--repeat``:

- ``floor``: encoding 121 ready frames with the product's encoder defaults
  (``engine_speed.py``'s own worker);
- ``generate flow``: ``segue generate`` with the default model (the flow engine);
- ``generate segue-rife``: the same with ``--model segue-rife`` (the learned engine, CPU,
  fp32, its default key times, torch);
- ``generate segue-rife, camera fixed``: the same with ``--camera-fixed``: the camera path
  is not taken, so the frames are the network's mixed with the flow engine's (``mixed``: both
  run), the cost of every video whose camera does not explain the frame; ``generate flow,
  camera fixed`` beside it;
- ``generate segue-rife (opencv)``: the same on the OpenCV DNN backend (a registry with
  ``"backend": "opencv"``; one untimed run first exports the graph for the size);
- ``network pass``: one pass of the network (torch) at the output size, in process (median
  of 3 after a warm-up), the unit the learned engine's time is made of.

Usage (from the repository root, with the ``learned`` extra and ``segue weights`` run)::

    python benchmarks/rife_speed.py [--repeat 3] [--sizes 720p]
        [--out benchmarks/results/rife_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_speed import (  # noqa: E402
    FRAMES,
    SIZES,
    _cpus,
    _measure,
    make_pair,
    speed_table,
    summarise,
)

ROOT = Path(__file__).resolve().parents[1]


def _opencv_registry(tmp: Path) -> Path:
    """The built-in registry with ``segue-rife`` on the OpenCV backend."""
    models = json.loads((ROOT / "segue" / "models.json").read_text())
    for entry in models["models"]:
        if entry["id"] == "segue-rife":
            entry["options"] = {**entry.get("options", {}), "backend": "opencv"}
    path = tmp / "models-opencv.json"
    path.write_text(json.dumps(models))
    return path


def _commands(tmp: Path, size: str) -> dict[str, tuple[list[str], bool]]:
    first, last, out = tmp / "first.png", tmp / "last.png", tmp / f"out-{size}.mp4"
    speed = [sys.executable, str(ROOT / "benchmarks" / "engine_speed.py"), "--worker"]
    generate = [sys.executable, "-m", "segue", "generate", "--first", str(first), "--last",
                str(last), "--prompt", "benchmark", "--resolution", size, "--ratio", "16:9",
                "--duration", "5", "-o", str(out)]
    return {
        "floor": ([*speed, "floor", str(first), str(last), size, str(out), "medium"], True),
        "generate flow": (generate, False),
        "generate segue-rife": ([*generate, "--model", "segue-rife"], False),
        "generate flow, camera fixed": ([*generate, "--camera-fixed"], False),
        "generate segue-rife, camera fixed": ([*generate, "--model", "segue-rife",
                                               "--camera-fixed"], False),
        "generate segue-rife (opencv)": (["env", f"SEGUE_MODELS_FILE={_opencv_registry(tmp)}",
                                          *generate, "--model", "segue-rife"], False),
    }


def network_pass(size: str) -> float:
    """Seconds of one network pass at ``size`` (median of 3 after one warm-up)."""
    sys.path.insert(0, str(ROOT))
    from segue.engines.rife.runtime import shared

    width, height = SIZES[size]
    first, last = (cv2.resize(x, (width, height)) for x in make_pair())
    rife = shared()
    pair = rife.pair(first, last)
    rife.flows(pair, 0.5)
    runs = []
    for t in (0.25, 0.5, 0.75):
        start = time.perf_counter()
        rife.flows(pair, t)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def run(repeat: int, sizes: list[str], skip: list[str] | None = None) -> dict[str, object]:
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "frames": FRAMES,
        "repeat": repeat, "cpus": _cpus(), "load_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, img in zip(("first", "last"), make_pair(), strict=True):
            cv2.imwrite(str(tmp / f"{name}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        for size in sizes:
            row: dict[str, object] = {}
            for name, (cmd, child) in _commands(tmp, size).items():
                if name in (skip or []):
                    continue
                if "opencv" in name:
                    _measure(cmd, child)  # exports the graph for this size once, untimed
                row[name] = summarise([_measure(cmd, child) for _ in range(repeat)])
                print(f"{size} {name}: {row[name]['seconds']:.2f} s, "  # type: ignore[index]
                      f"peak RSS {row[name]['peak_rss_mb']:.0f} MB", flush=True)  # type: ignore[index]
            row["network_pass_seconds"] = network_pass(size)
            results[size] = row
    results["load_after"] = os.getloadavg()[0]
    return results


def report(results: dict[str, object]) -> str:
    return speed_table(
        results, f"{results['date']}, {results['cpus']} CPUs, load average "
        f"{results['load_before']:.2f} before / {results['load_after']:.2f} after; median of "
        f"{results['repeat']}; 5 s at 24 fps ({results['frames']} frames).",
        lambda size, row: [f"| {size} | one network pass (in process) | "
                           f"{row['network_pass_seconds']:.2f} | | | |"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="720p")
    parser.add_argument("--skip", default="", help="jobs left out, comma-separated names")
    parser.add_argument("--out", type=Path, default=None, help="write JSON (and .md) here")
    args = parser.parse_args()
    results = run(args.repeat, args.sizes.split(","), [j for j in args.skip.split(",") if j])
    print(report(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(report(results) + "\n")


if __name__ == "__main__":
    main()
