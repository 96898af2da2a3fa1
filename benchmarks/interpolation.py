"""Interpolation quality benchmark: the flow engine beside plain DIS, on every scored set.

Sets and reference methods are described in ``interp_sets.py``: Middlebury (``interp-dev``),
the real clips of ``interp-dev2`` (triplets, 8-step and 24-step long windows) and a virtual
camera over real photos with exact ground truth. Per subset, over all its in-between frames:

- PSNR in dB on uint8 RGB over the whole frame (mean over frames);
- IE, the mean absolute difference on 0-255 over all pixels and channels (mean over frames);
- for the camera set also the outer 32 px band alone (where content enters or leaves).

Each method sees the same frames; ``plain_dis`` and (camera set) ``oracle`` are computed in
the same run. The engine's end frames are checked to be exact. Frame grids (first, t = ¼, ½,
¾, last; rows: truth, plain DIS, flow) for two camera moves and for the two 8-step windows
where the engine scores lowest go to ``results/grids/`` (kept out of the repository: they show
the development data), and one of a virtual camera over a synthetic texture to ``results/``.
Every frame of every window is scored.

Usage (from the repository root)::

    python benchmarks/interpolation.py [--dev ../shared/data/interp-dev]
        [--dev2 ../shared/data/interp-dev2] [--preset medium] [--sets camera,triplets]
        [--limit N] [--out benchmarks/results/interpolation.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine_speed import _texture  # noqa: E402
from interp_sets import (  # noqa: E402
    CAMERA_TIMES,
    KINDS,
    Sample,
    camera_sample,
    camera_sources,
    load_dir,
    oracle,
    plain_dis,
    read_rgb,
    real_sets,
)

from segue.engines.flow import interpolate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETS = ("middlebury", "triplets", "long_x8", "long_x24", "camera")
BAND = 32
Method = Callable[[np.ndarray, np.ndarray, list[float]], list[np.ndarray]]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ie(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def band(img: np.ndarray) -> np.ndarray:
    """The outer ``BAND`` pixels of a frame, as one flat array."""
    inner = np.ones(img.shape[:2], bool)
    inner[BAND:-BAND, BAND:-BAND] = False
    return img[inner]


def samples(name: str, dev: Path, dev2: Path, limit: int
            ) -> Iterator[tuple[Sample, np.ndarray | None]]:
    """(sample, exact homography or None) of one set, loaded one at a time."""
    if name == "camera":
        for i, photo in enumerate(camera_sources(dev2)[:limit or None]):
            yield camera_sample(read_rgb(photo), i)
        return
    for seq in real_sets(dev, dev2)[name][:limit or None]:
        yield load_dir(seq), None


def methods_for(preset: str, h: np.ndarray | None) -> dict[str, Method]:
    found: dict[str, Method] = {
        "plain_dis": plain_dis,
        "flow": lambda a, b, ts: interpolate(a, b, [0.0, *ts, 1.0], preset=preset),
    }
    if h is not None:
        found["oracle"] = lambda a, b, ts: oracle(a, b, ts, h)
    return found


def score_set(name: str, dev: Path, dev2: Path, preset: str, limit: int,
              methods: Callable[[np.ndarray | None], dict[str, Method]] | None = None
              ) -> dict[str, object]:
    """Every method on every sample of one set, beside plain DIS. ``methods(h)`` gives the
    methods for a sample with exact homography ``h`` (default ``methods_for``); a method
    whose frames include the ends (two more than the times) must give them exactly."""
    pick = methods or (lambda h: methods_for(preset, h))
    frames: dict[str, list[tuple[float, float, float]]] = {}
    per_sample: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    exact = True
    for (seq, first, last, gts), h in samples(name, dev, dev2, limit):
        times = sorted(gts)
        per_sample[seq] = {}
        for method, fn in pick(h).items():
            start = time.perf_counter()
            out = fn(first, last, times)
            seconds[method] = seconds.get(method, 0.0) + time.perf_counter() - start
            if len(out) == len(times) + 2:
                exact &= np.array_equal(out[0], first) and np.array_equal(out[-1], last)
                out = out[1:-1]
            rows = [(psnr(o, gts[t]), ie(o, gts[t]), psnr(band(o), band(gts[t])))
                    for o, t in zip(out, times, strict=True)]
            frames.setdefault(method, []).extend(rows)
            per_sample[seq][method] = float(np.mean([r[0] for r in rows]))
    summary = {m: {"psnr": float(np.mean([r[0] for r in rows])),
                   "ie": float(np.mean([r[1] for r in rows])),
                   "band_psnr": float(np.mean([r[2] for r in rows])),
                   "frames": len(rows), "seconds": seconds[m]}
               for m, rows in frames.items()}
    wins = {m: sum(v[m] > v["plain_dis"] for v in per_sample.values()) for m in summary}
    return {"samples": len(per_sample), "summary": summary, "endpoints_exact": exact,
            "better_than_plain_dis": wins, "per_sample": per_sample}


# --------------------------------------------------------------------------- frame grids


def grid_image(first: np.ndarray, last: np.ndarray, rows: dict[str, list[np.ndarray]],
               width: int = 256) -> np.ndarray:
    """Rows of (first, three in-between frames, last), labelled, cells ``width`` wide."""
    hgt = round(first.shape[0] * width / first.shape[1])
    lines = []
    for label, mids in rows.items():
        cells = [cv2.resize(x, (width, hgt), interpolation=cv2.INTER_AREA)
                 for x in (first, *mids, last)]
        line = np.hstack(cells)
        cv2.putText(line, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2)
        cv2.putText(line, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
        lines.append(line)
    return np.vstack(lines)


def write_grid(path: Path, sample: Sample, preset: str) -> None:
    _, first, last, gts = sample
    times = list(CAMERA_TIMES)
    rows = {"truth": [gts[t] for t in times], "plain DIS": plain_dis(first, last, times),
            "flow": interpolate(first, last, times, preset=preset)}
    img = grid_image(first, last, rows)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def write_grids(result: dict[str, object], dev2: Path, preset: str, folder: Path
                ) -> list[str]:
    """Grids of two camera moves and the two hardest 8-step windows into ``folder/grids``
    (made from the development data, whose terms keep them out of the repository), and one
    of a virtual camera over a synthetic texture into ``folder`` (shown in the README)."""
    (folder / "grids").mkdir(exist_ok=True)
    written = []
    for i, photo in enumerate(camera_sources(dev2)[:2]):
        sample, _ = camera_sample(read_rgb(photo), i)
        written.append(f"grids/grid_camera_{i}.jpg")
        write_grid(folder / written[-1], sample, preset)
    long_x8 = result["sets"].get("long_x8") if isinstance(result["sets"], dict) else None
    if long_x8:
        worst = sorted(long_x8["per_sample"].items(), key=lambda kv: kv[1]["flow"])[:2]
        for name, _ in worst:
            written.append(f"grids/grid_{name}.jpg")
            write_grid(folder / written[-1], load_dir(dev2 / "long" / name), preset)
    texture = _texture(np.random.default_rng(5), 450, 800)
    sample, _ = camera_sample(texture, len(KINDS) - 1)  # pan, zoom and roll together
    written.append("grid_synthetic_camera.jpg")
    write_grid(folder / written[-1], sample, preset)
    return written


# --------------------------------------------------------------------------- report


def run(dev: Path, dev2: Path, preset: str, sets: list[str], limit: int) -> dict[str, object]:
    load_before = os.getloadavg()[0]
    scored = {}
    for name in sets:
        start = time.perf_counter()
        scored[name] = score_set(name, dev, dev2, preset, limit)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "preset": preset,
            "limit": limit, "machine": {"cpus": _cpus(), "python": platform.python_version(),
                                        "opencv": cv2.__version__,
                                        "load_average": [load_before, os.getloadavg()[0]]},
            "sets": scored}


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _cell(score: dict[str, float] | None) -> str:
    return f"{score['psnr']:.2f} / {score['ie']:.2f}" if score else "–"


def report(result: dict[str, object]) -> str:
    load = result["machine"]["load_average"]
    lines = [f"{result['date']}, preset `{result['preset']}`, load average {load[0]:.2f} "
             f"before / {load[1]:.2f} after (quality does not depend on load). PSNR dB / IE, "
             "mean over in-between frames; seconds are the method's total time.", "",
             "| set | samples | frames | plain DIS | flow | flow − plain DIS | oracle | "
             "ends exact |", "|---|---|---|---|---|---|---|---|"]
    for name, s in result["sets"].items():
        summ = s["summary"]
        base, flow = summ["plain_dis"], summ["flow"]
        orc = summ.get("oracle")
        lines.append(
            f"| {name} | {s['samples']} | {flow['frames']} | {base['psnr']:.2f} / {base['ie']:.2f}"
            f" | **{flow['psnr']:.2f} / {flow['ie']:.2f}** | {flow['psnr'] - base['psnr']:+.2f}"
            f" | {_cell(orc)}"
            f" | {'yes' if s['endpoints_exact'] else 'NO'} |")
    cam = result["sets"].get("camera")
    if cam:
        b = {m: v["band_psnr"] for m, v in cam["summary"].items()}
        lines += ["", f"Camera set, outer {BAND} px band alone (PSNR dB): "
                  + ", ".join(f"{m} {v:.2f}" for m, v in b.items()) + "."]
    secs = {}
    for s in result["sets"].values():
        for m, v in s["summary"].items():
            secs[m] = secs.get(m, 0.0) + v["seconds"]
    lines += ["", "Seconds in all: " + ", ".join(f"{m} {v:.0f}" for m, v in secs.items()) + "."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=ROOT / "../shared/data/interp-dev")
    parser.add_argument("--dev2", type=Path, default=ROOT / "../shared/data/interp-dev2")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--limit", type=int, default=0, help="samples per set (0: all)")
    parser.add_argument("--out", type=Path, default=None, help="write JSON, .md and grids")
    args = parser.parse_args()
    dev, dev2 = args.dev.resolve(), args.dev2.resolve()
    result = run(dev, dev2, args.preset, args.sets.split(","), args.limit)
    text = report(result)
    print(text)
    if args.out:
        result["grids"] = write_grids(result, dev2, args.preset, args.out.parent)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text + "\n")


if __name__ == "__main__":
    main()
