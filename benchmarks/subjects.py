"""Moving subjects: the flow engine against plain DIS and a cross-dissolve, where things travel.

Each scene is a subject cut from a real photo with a soft mask (a random smooth outline,
feathered over about two pixels) travelling over a background, at 960×540:

- the background is another real photo (textured) or, for a quarter of the scenes, a
  near-flat one (a sky-like gradient with a little grain: nothing for dense flow to hold);
- the subject travels 24 to 400 px (log-uniform), on a straight line at constant speed,
  changes size by up to ±15 % and turns by up to ±6°; a third of the scenes add a small
  camera pan, and some a second subject;
- every frame (t = 0, ½, 1) is drawn by the same compositing from the same sources, so the
  truth at t = ½ is the subject halfway along its path, at its halfway size and turn.

Two scenes reproduce the seed document's "Aeroplane from takeoff to fly" at 1248×704: a
plane cut-out over a sky above a drawn landscape, moving 120 px right and 40 px up, and
moving about 750 px. Their frame grids (rows: the engine with subject layers off, with them,
the truth) are written beside the results; they show no development data.

Scores per method (the engine, the engine with subject layers off, plain DIS, a 50/50
dissolve), at t = ½: PSNR (dB) over the whole frame and over the moving region (every pixel
a subject covers at t = 0, ½ or 1), and the *ghost* of each end: the mean error, over the
pixels the subject covers at that end but not at t = ½, as a share of the dissolve's error
there. A subject shown twice leaves a ghost of about 1 (as strong as the dissolve's); a
ghost over 0.25 is counted as "shown twice".

Real photos are read from the development sets (``--dev2``), never copied here.

    python benchmarks/subjects.py [--dev2 ../shared/data/interp-dev2] [--scenes 20]
        [--seed 2026] [--out benchmarks/results/subjects.json]

The engine was tuned on the default draw (``--seed 2026``, 20 scenes); another seed draws
scenes it has never seen, the check that it was not tuned to these.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interp_sets import plain_dis, read_rgb  # noqa: E402
from large_motion import texture  # noqa: E402

from segue.engines.flow import interpolate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = (960, 540)
PLANE_SIZE = (1248, 704)
TWICE = 0.25  # a ghost at least this strong shows the subject twice
SEED = 2026  # the draw of scenes the engine was tuned on (others: ``--seed``, to check it)
Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Mover:
    """A subject: its picture and soft alpha, and its path (centre, size, turn) over t."""

    image: np.ndarray  # h×w×3 uint8
    alpha: np.ndarray  # h×w float32 0..1
    start: tuple[float, float]  # centre at t = 0
    move: tuple[float, float]  # displacement over the clip
    grow: float  # size at t = 1 ÷ size at t = 0
    turn: float  # degrees over the clip

    def matrix(self, t: float) -> np.ndarray:
        h, w = self.alpha.shape
        scale = 1.0 + t * (self.grow - 1.0)  # corners move linearly: size changes linearly
        m = cv2.getRotationMatrix2D((w / 2, h / 2), t * self.turn, scale)
        m[:, 2] += [self.start[0] + t * self.move[0] - w / 2,
                    self.start[1] + t * self.move[1] - h / 2]
        return m


@dataclass(frozen=True)
class Scene:
    name: str
    canvas: np.ndarray  # background larger than the frame (room for the pan)
    pan: tuple[float, float]  # camera move over the clip, px
    movers: tuple[Mover, ...]
    size: tuple[int, int]

    def frame(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The frame at time t and the subjects' alpha there."""
        w, h = self.size
        ox = (self.canvas.shape[1] - w) / 2 + t * self.pan[0]
        oy = (self.canvas.shape[0] - h) / 2 + t * self.pan[1]
        shift = np.float32([[1, 0, -ox], [0, 1, -oy]])
        img = cv2.warpAffine(self.canvas, shift, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        cover = np.zeros((h, w), np.float32)
        for mover in self.movers:
            m = mover.matrix(t)
            picture = cv2.warpAffine(mover.image, m, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            a = cv2.warpAffine(mover.alpha, m, (w, h), flags=cv2.INTER_LINEAR)
            img += a[..., None] * (picture - img)
            cover = np.maximum(cover, a)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8), cover


# --------------------------------------------------------------------------- sources


def photos(dev2: Path) -> list[np.ndarray]:
    """One frame of every clip of the development set (its first triplet per clip)."""
    seen, out = set(), []
    for folder in sorted((dev2 / "triplets").iterdir()):
        clip = folder.name.rsplit("_f", 1)[0]
        if clip not in seen:
            seen.add(clip)
            out.append(read_rgb(folder / "first.png"))
    if not out:
        raise SystemExit(f"no photos under {dev2}/triplets")
    return out


def cover_to(photo: np.ndarray, w: int, h: int) -> np.ndarray:
    """``photo`` scaled to cover w×h and cropped to it, centred."""
    s = max(w / photo.shape[1], h / photo.shape[0])
    big = cv2.resize(photo, (math.ceil(photo.shape[1] * s), math.ceil(photo.shape[0] * s)),
                     interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
    y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y:y + h, x:x + w].copy()


def flat_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A sky or a studio wall: a smooth two-colour gradient with fine grain."""
    top, bottom = rng.uniform(60, 235, 3), rng.uniform(60, 235, 3)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = top + ramp * (bottom - top)
    img = np.broadcast_to(img, (h, w, 3)).copy()
    low = cv2.resize(rng.normal(0, 4, (4, 6, 3)).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    img += low + rng.normal(0, 1.2, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def outline(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A soft alpha of a random smooth blob filling most of w×h (feathered ~2 px)."""
    angles = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    radius = np.ones_like(angles)
    for k in (2, 3, 5):
        radius += rng.uniform(-0.12, 0.12) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    radius /= radius.max()
    pts = np.stack([w / 2 + 0.47 * w * radius * np.cos(angles),
                    h / 2 + 0.47 * h * radius * np.sin(angles)], axis=1)
    mask = np.zeros((4 * h, 4 * w), np.uint8)  # drawn at 4× and shrunk: an antialiased edge
    cv2.fillPoly(mask, [np.round(pts * 4).astype(np.int32)], 255)
    small = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return cv2.GaussianBlur(small, (0, 0), 0.8)


def cut(rng: np.random.Generator, photo: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """A subject about ``side`` px across cut from a random place of ``photo``."""
    aspect = rng.uniform(0.6, 1.6)
    w, h = max(16, round(side * math.sqrt(aspect))), max(16, round(side / math.sqrt(aspect)))
    src = cover_to(photo, max(w * 2, photo.shape[1]), max(h * 2, photo.shape[0]))
    x, y = int(rng.integers(0, src.shape[1] - w)), int(rng.integers(0, src.shape[0] - h))
    image = src[y:y + h, x:x + w]
    # a subject stands out from what it crosses: its own contrast, slightly lifted
    image = np.clip((image.astype(np.float32) - 128) * 1.2 + 128 + rng.uniform(-30, 30, 3),
                    0, 255).astype(np.uint8)
    return image, outline(rng, w, h)


def scene(rng: np.random.Generator, index: int, pool: list[np.ndarray]) -> Scene:
    w, h = SIZE
    flat = index % 4 == 3
    pan = (float(rng.uniform(-20, 20)), float(rng.uniform(-10, 10))) if index % 3 == 1 \
        else (0.0, 0.0)
    margin = 40
    bg_photo = pool[int(rng.integers(len(pool)))]
    canvas = flat_background(rng, w + 2 * margin, h + 2 * margin) if flat else \
        cover_to(bg_photo, w + 2 * margin, h + 2 * margin)
    movers = []
    for _ in range(1 if index % 5 else 2):
        side = int(rng.integers(60, 200))
        image, alpha = cut(rng, pool[int(rng.integers(len(pool)))], side)
        dist = math.exp(rng.uniform(math.log(24), math.log(400)))
        angle = rng.uniform(0, 2 * np.pi)
        move = (dist * math.cos(angle), dist * math.sin(angle))
        half = max(alpha.shape) * 0.6 + 4
        lo = (half + max(0.0, -move[0]), half + max(0.0, -move[1]))
        hi = (w - half - max(0.0, move[0]), h - half - max(0.0, move[1]))
        if hi[0] <= lo[0] or hi[1] <= lo[1]:  # too far for this frame: travel less
            move = (move[0] / 2, move[1] / 2)
            lo = (half + max(0.0, -move[0]), half + max(0.0, -move[1]))
            hi = (w - half - max(0.0, move[0]), h - half - max(0.0, move[1]))
        start = (float(rng.uniform(lo[0], hi[0])), float(rng.uniform(lo[1], hi[1])))
        movers.append(Mover(image, alpha, start, move, float(rng.uniform(0.85, 1.15)),
                            float(rng.uniform(-6, 6))))
    kind = "flat" if flat else "photo"
    return Scene(f"{index:02d}-{kind}", canvas, pan, tuple(movers), SIZE)


def plane(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """A side view of an airliner, w×h: white fuselage, red tail with white stripes, grey
    wings and windows, on a soft alpha (drawn at 4× and shrunk)."""
    k = 4
    img = np.zeros((h * k, w * k, 3), np.uint8)
    mask = np.zeros((h * k, w * k), np.uint8)

    def poly(points: list[tuple[float, float]], colour: tuple[int, int, int]) -> None:
        pts = np.round(np.asarray(points) * [w * k, h * k]).astype(np.int32)
        cv2.fillPoly(img, [pts], colour)
        cv2.fillPoly(mask, [pts], 255)

    poly([(0.02, 0.55), (0.08, 0.45), (0.85, 0.42), (0.97, 0.5), (0.85, 0.6), (0.08, 0.62)],
         (238, 240, 244))  # fuselage
    poly([(0.72, 0.45), (0.8, 0.05), (0.92, 0.05), (0.9, 0.45)], (200, 30, 40))  # tail fin
    for y in (0.15, 0.27):
        poly([(0.8 - 0.03 * y, y), (0.915, y), (0.913, y + 0.05), (0.79 - 0.03 * y, y + 0.05)],
             (245, 245, 245))  # the fin's white stripes
    poly([(0.35, 0.55), (0.6, 0.55), (0.45, 0.95), (0.38, 0.95)], (150, 155, 165))  # wing
    poly([(0.82, 0.5), (0.95, 0.5), (0.9, 0.65), (0.86, 0.65)], (170, 175, 185))  # stabiliser
    for i in range(14):
        x = 0.15 + i * 0.045
        cv2.circle(img, (round(x * w * k), round(0.49 * h * k)), max(1, round(0.018 * h * k)),
                   (40, 60, 90), -1)
    image = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return image, alpha


def landscape(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Fields and woods seen from afar: tinted multi-scale noise in patches (drawn, so that
    the frame grids of the plane scenes show no development data)."""
    img = texture(rng, h, w, np.float32([40, 70, 20]))
    for _ in range(30):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        colour = tuple(int(c) for c in rng.integers(40, 160, 3) * np.asarray([0.8, 1.0, 0.5]))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(20, 160)), y + int(rng.integers(8, 40))),
                      colour, -1)
    return cv2.GaussianBlur(img, (0, 0), 0.7)


def plane_scene(move: tuple[float, float], name: str) -> Scene:
    w, h = PLANE_SIZE
    rng = np.random.default_rng(7)
    canvas = flat_background(rng, w, h)
    canvas[:, :] = np.clip(canvas.astype(np.int16) // 2 + [60, 100, 150], 0, 255)  # blue sky
    land = landscape(rng, w, h // 3)
    canvas[h - land.shape[0]:] = land
    image, alpha = plane(300, 110)
    start = (w / 2 - move[0] / 2, 0.42 * h - move[1] / 2)
    mover = Mover(image, alpha, start, move, 1.0, 0.0)
    return Scene(name, canvas, (0.0, 0.0), (mover,), PLANE_SIZE)


def scenes(dev2: Path, count: int, seed: int = SEED) -> list[Scene]:
    pool = photos(dev2)
    rng = np.random.default_rng(seed)
    out = [scene(rng, i, pool) for i in range(count)]
    out.append(plane_scene((120.0, -40.0), "plane-120px"))
    out.append(plane_scene((750.0, -120.0), "plane-750px"))
    return out


# --------------------------------------------------------------------------- scoring


def psnr(diff: np.ndarray) -> float:
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    return 99.0 if mse == 0 else 10 * math.log10(255**2 / mse)


def score(got: np.ndarray, want: np.ndarray, blend: np.ndarray, region: np.ndarray,
          ghosts: list[np.ndarray]) -> dict[str, float]:
    diff = got.astype(np.float64) - want
    out = {"psnr": psnr(diff), "psnr_moving": psnr(diff[region])}
    worst = 0.0
    for ghost in ghosts:
        if ghost.sum() < 20:
            continue
        ours = float(np.abs(diff[ghost]).mean())
        theirs = float(np.abs(blend.astype(np.float64) - want)[ghost].mean())
        worst = max(worst, ours / max(theirs, 1e-6))
    out["ghost"] = worst
    return out


def methods() -> dict[str, Method]:
    return {
        "flow": lambda a, b: interpolate(a, b, [0.5])[0],
        "flow_no_layers": lambda a, b: interpolate(a, b, [0.5], subjects=False)[0],
        "plain_dis": lambda a, b: plain_dis(a, b, [0.5])[0],
        "blend": lambda a, b: cv2.addWeighted(a, 0.5, b, 0.5, 0),
    }


def run(dev2: Path, count: int, grids: Path | None, seed: int = SEED) -> dict[str, object]:
    rows, seconds = [], dict.fromkeys(methods(), 0.0)
    for sc in scenes(dev2, count, seed):
        (first, a0), (mid, a5), (last, a1) = (sc.frame(t) for t in (0.0, 0.5, 1.0))
        region = (a0 > 0.05) | (a5 > 0.05) | (a1 > 0.05)
        ghosts = [(a > 0.5) & (a5 < 0.05) for a in (a0, a1)]
        blend = cv2.addWeighted(first, 0.5, last, 0.5, 0)
        row: dict[str, object] = {"scene": sc.name}
        outputs = {}
        for name, method in methods().items():
            start = time.perf_counter()
            got = method(first, last)
            seconds[name] += time.perf_counter() - start
            outputs[name] = got
            row[name] = score(got, mid.astype(np.float64), blend, region, ghosts)
        rows.append(row)
        if grids is not None and sc.name.startswith("plane"):
            grid_image(sc, grids / f"grid_{sc.name}.jpg")
    mean = {m: {k: float(np.mean([r[m][k] for r in rows])) for k in ("psnr", "psnr_moving")}
            for m in methods()}
    twice = {m: sum(r[m]["ghost"] > TWICE for r in rows) for m in methods()}
    return {"size": list(SIZE), "scenes": rows, "mean": mean, "shown_twice": twice,
            "seconds": seconds}


def grid_image(sc: Scene, path: Path) -> None:
    """Rows: the engine with subject layers off, with them, and the truth; columns: t = 0,
    ¼, ½, ¾, 1. Written at half size."""
    first, last = sc.frame(0.0)[0], sc.frame(1.0)[0]
    times = [0.0, 0.25, 0.5, 0.75, 1.0]
    rows = [interpolate(first, last, times, subjects=False), interpolate(first, last, times),
            [sc.frame(t)[0] for t in times]]
    w, h = sc.size
    small = [[cv2.resize(f, (w // 4, h // 4), interpolation=cv2.INTER_AREA) for f in row]
             for row in rows]
    picture = np.vstack([np.hstack(row) for row in small])
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 88])


def markdown(result: dict[str, object]) -> str:
    names = list(methods())
    head = "| scene | " + " | ".join(f"{m} dB / moving dB / ghost" for m in names) + " |"
    lines = [head, "|---" * (len(names) + 1) + "|"]
    for row in result["scenes"]:  # type: ignore[attr-defined]
        cells = [f"{row[m]['psnr']:.2f} / {row[m]['psnr_moving']:.2f} / {row[m]['ghost']:.2f}"
                 for m in names]
        lines.append(f"| {row['scene']} | " + " | ".join(cells) + " |")
    mean, twice = result["mean"], result["shown_twice"]
    cells = [f"**{mean[m]['psnr']:.2f} / {mean[m]['psnr_moving']:.2f}** / {twice[m]} twice"
             for m in names]  # type: ignore[index]
    lines.append("| **mean** | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dev2", type=Path, default=ROOT.parent / "shared/data/interp-dev2")
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=SEED,
                        help="draw of scenes (the engine was tuned on the default)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (.md written beside)")
    args = parser.parse_args()
    grids = args.out.parent if args.out else None
    result = run(args.dev2, args.scenes, grids, args.seed)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    table = (f"{stamp}, scenes drawn with seed {args.seed}. t = ½; PSNR dB whole / in the "
             f"moving region / ghost (the worst end's "
             f"error where the subject was, ÷ the dissolve's; > {TWICE} = shown twice).\n\n"
             + markdown(result))
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(table)


if __name__ == "__main__":
    main()
