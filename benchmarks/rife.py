"""The learned engine beside plain DIS and the flow engine, on every scored set, in one run.

Sets, scores and the reference methods are those of ``interpolation.py`` (``interp_sets``):
Middlebury, the interp-dev2 triplets and long windows (x8, x24) and the virtual camera moves.
Methods, each on the same frames:

- ``plain_dis``: the baseline (OpenCV DIS both ways, linear blend);
- ``flow``: the flow engine (``segue.engines.flow.interpolate``, preset ``--preset``);
- ``rife``: ``segue.engines.rife.interpolate(camera=False)``, the network alone at every
  in-between time, both ends warped along its flows and blended by time;
- ``rife_ensemble``: the same, each time also asked with the ends swapped (t -> 1 - t) and
  the two answers averaged (``Rife(ensemble=True)``, twice the network's time);
- ``rife_camera``: ``camera_frames(mix=False)``: the camera path where the camera explains
  the frame, else the network alone (what ``segue-rife`` rendered before ``mixed``), the
  network at every time;
- ``rife_mean``: the camera path where taken, else the flow engine's frame and the
  network's in fixed shares (the flow engine's: ``SHARE``; ``mixed_frames(share=...)``);
- ``rife_mixed``: what ``segue-rife`` renders (``camera_frames``): the camera path where
  taken, else the two frames in the shares ``mixed.flow_weight`` picks for the pair;
- ``rife_keys`` (long x8 and x24 only, where it differs): ``rife_mixed`` at the engine's
  ``DEFAULT_KEYS`` key times, the flows between them interpolated, as ``segue-rife`` renders
  a video; on the other sets every scored time is a key and it equals ``rife_mixed``.

``--limit N`` scores the first N samples of each set (0: all). The ends of both engines are
checked to be exact. Seconds are each method's total time on this machine. ``--methods``
picks methods (plain DIS always runs).

Usage (from the repository root, with the ``learned`` extra and ``segue weights`` run)::

    python benchmarks/rife.py [--dev ../shared/data/interp-dev]
        [--dev2 ../shared/data/interp-dev2] [--sets middlebury,triplets] [--limit N]
        [--out benchmarks/results/rife.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from functools import lru_cache
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import interpolation  # noqa: E402
from interp_sets import plain_dis  # noqa: E402
from interpolation import _cpus  # noqa: E402

from segue.engines import flow, rife  # noqa: E402
from segue.engines.rife.camera import camera_frames  # noqa: E402
from segue.engines.rife.engine import DEFAULT_KEYS  # noqa: E402
from segue.engines.rife.runtime import Rife, shared  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETS = ("middlebury", "triplets", "long_x8", "long_x24", "camera")


@lru_cache(maxsize=1)
def ensemble() -> Rife:
    return Rife(None, "cpu", ensemble=True)


SHARE = 0.4  # rife_mean's flow-engine share (the best fixed share on the real clips)


def methods(name: str, preset: str, share: float = SHARE) -> dict[str, object]:
    found: dict[str, object] = {
        "plain_dis": plain_dis,
        "flow": lambda a, b, ts: flow.interpolate(a, b, [0.0, *ts, 1.0], preset=preset),
        "rife": lambda a, b, ts: rife.interpolate(a, b, [0.0, *ts, 1.0], camera=False),
        "rife_camera": lambda a, b, ts: list(camera_frames(shared(), a, b, [0.0, *ts, 1.0],
                                                           mix=False)),
        "rife_ensemble": lambda a, b, ts: list(ensemble().frames(a, b, [0.0, *ts, 1.0])),
        "rife_mean": lambda a, b, ts: list(camera_frames(shared(), a, b, [0.0, *ts, 1.0],
                                                         share=share)),
        "rife_mixed": lambda a, b, ts: list(camera_frames(shared(), a, b, [0.0, *ts, 1.0])),
    }
    if name in ("long_x8", "long_x24"):
        found["rife_keys"] = lambda a, b, ts: list(camera_frames(
            shared(), a, b, [0.0, *ts, 1.0], keys=DEFAULT_KEYS))
    return found


def chosen(name: str, preset: str, only: list[str] | None) -> dict[str, object]:
    found = methods(name, preset)
    return {m: fn for m, fn in found.items() if not only or m in only or m == "plain_dis"}


def score_set(name: str, dev: Path, dev2: Path, preset: str, limit: int,
              only: list[str] | None = None) -> dict[str, object]:
    """``interpolation.score_set`` with this benchmark's methods."""
    found = chosen(name, preset, only)
    return interpolation.score_set(name, dev, dev2, preset, limit,
                                   lambda _h: found)  # type: ignore[arg-type,return-value]


def run(dev: Path, dev2: Path, preset: str, sets: list[str], limit: int,
        only: list[str] | None = None) -> dict[str, object]:
    load_before = os.getloadavg()[0]
    scored = {}
    for name in sets:
        start = time.perf_counter()
        scored[name] = score_set(name, dev, dev2, preset, limit, only)
        summary = scored[name]["summary"]
        print(f"{name}: {time.perf_counter() - start:.0f} s; " + ", ".join(
            f"{m} {v['psnr']:.2f}" for m, v in summary.items()), flush=True)
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "preset": preset,
            "limit": limit, "keys": DEFAULT_KEYS, "share": SHARE,
            "machine": {"cpus": _cpus(), "python": platform.python_version(),
                        "opencv": cv2.__version__, "torch": torch.__version__,
                        "torch_threads": torch.get_num_threads(),
                        "load_average": [load_before, os.getloadavg()[0]]},
            "sets": scored}


def report(result: dict[str, object]) -> str:
    load = result["machine"]["load_average"]  # type: ignore[index]
    limit = result["limit"]
    names = [m for m in ("plain_dis", "flow", "rife", "rife_ensemble", "rife_camera",
                         "rife_mean", "rife_mixed", "rife_keys")
             if any(m in s["summary"] for s in result["sets"].values())]
    lines = [f"{result['date']}, flow preset `{result['preset']}`, "
             f"{'all samples' if not limit else f'first {limit} samples per set'}, "
             f"load average {load[0]:.2f} before / {load[1]:.2f} after. PSNR dB / IE, mean "
             "over in-between frames; (Δ) against plain DIS in the same run. `rife_mean`: the flow "
             f"engine's share fixed at {result.get('share', SHARE)}. `rife_keys`: "
             f"the network at {result['keys']} key times (what `segue-rife` renders), on the "
             "long windows only (elsewhere every scored time is a key).", "",
             "| set | samples | frames | " + " | ".join(names) + " | ends exact |",
             "|---|---|---|" + "---|" * len(names) + "---|"]
    for name, s in result["sets"].items():  # type: ignore[attr-defined]
        summ = s["summary"]
        base = summ["plain_dis"]["psnr"]
        cells = []
        for m in names:
            v = summ.get(m)
            cells.append("–" if v is None else f"{v['psnr']:.2f} / {v['ie']:.2f}"
                         + ("" if m == "plain_dis" else f" ({v['psnr'] - base:+.2f})"))
        lines.append(f"| {name} | {s['samples']} | {summ['plain_dis']['frames']} | "
                     + " | ".join(cells) + f" | {'yes' if s['endpoints_exact'] else 'NO'} |")
    cam = result["sets"].get("camera")  # type: ignore[attr-defined]
    if cam:
        b = {m: v["band_psnr"] for m, v in cam["summary"].items()}
        lines += ["", "Camera set, outer 32 px band alone (PSNR dB): "
                  + ", ".join(f"{m} {v:.2f}" for m, v in b.items()) + "."]
    secs: dict[str, float] = {}
    for s in result["sets"].values():  # type: ignore[attr-defined]
        for m, v in s["summary"].items():
            secs[m] = secs.get(m, 0.0) + v["seconds"]
    lines += ["", "Seconds in all: " + ", ".join(f"{m} {v:.0f}" for m, v in secs.items())
              + f" ({result['machine']['cpus']} cores, torch "  # type: ignore[index]
              f"{result['machine']['torch']} fp32)."]  # type: ignore[index]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=ROOT / "../shared/data/interp-dev")
    parser.add_argument("--dev2", type=Path, default=ROOT / "../shared/data/interp-dev2")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--limit", type=int, default=0, help="samples per set (0: all)")
    parser.add_argument("--methods", default="", help="comma-separated (plain_dis always)")
    parser.add_argument("--out", type=Path, default=None, help="write JSON and .md")
    args = parser.parse_args()
    only = [m for m in args.methods.split(",") if m] or None
    result = run(args.dev.resolve(), args.dev2.resolve(), args.preset, args.sets.split(","),
                 args.limit, only)
    text = report(result)
    print(text)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text + "\n")


if __name__ == "__main__":
    main()
