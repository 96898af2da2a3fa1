"""The scored sets and the reference methods of ``interpolation.py``.

Sets (each a list of samples: name, first, last, ground truth by time):

- ``middlebury``: ``interp-dev/*/*`` (12 Middlebury "other" triplets, t = 0.5);
- ``triplets``, ``long_x8``, ``long_x24``: ``interp-dev2`` real clips (t = 0.5; j/8; j/24);
- ``camera``: a virtual camera over real photos (see ``camera_set``), exact ground truth.

Reference methods, computed in the same run as the engine:

- ``plain_dis``: OpenCV DIS (MEDIUM) both ways, the linear flow approximation to time t,
  bilinear backward warps of both ends, blended ``(1-t)·W0 + t·W1``: no occlusion handling,
  no camera model. Every engine change is judged against it.
- ``oracle`` (camera set only): both ends warped along the exact homography path, each
  output pixel blended only from the end frames that saw it.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

Sample = tuple[str, np.ndarray, np.ndarray, dict[float, np.ndarray]]

CAMERA_SIZE = (640, 360)  # output of the virtual camera
CAMERA_TIMES = (0.25, 0.5, 0.75)
_WORLD = 1.25  # the photo is scaled to this multiple of the output: room for the moves


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_dir(seq: Path) -> Sample:
    """One sample folder: first.png, last.png and gt_t<t>.png files."""
    gts = {}
    for gt in sorted(seq.glob("gt_t*.png")):
        match = re.fullmatch(r"gt_t([0-9.]+)\.png", gt.name)
        if match:
            gts[float(match.group(1))] = read_rgb(gt)
    return seq.name, read_rgb(seq / "first.png"), read_rgb(seq / "last.png"), gts


def folders(data: Path, pattern: str) -> list[Path]:
    return sorted(p.parent for p in data.glob(f"{pattern}/meta.json"))


def real_sets(dev: Path, dev2: Path) -> dict[str, list[Path]]:
    """Sample folders of each real subset (loaded one at a time: the set is large)."""
    return {
        "middlebury": folders(dev, "*/*"),
        "triplets": folders(dev2, "triplets/*"),
        "long_x8": folders(dev2, "long/*_x8"),
        "long_x24": folders(dev2, "long/*_x24"),
    }


# --------------------------------------------------------------------------- camera moves


def camera_at(h: np.ndarray, t: float, w: int, hgt: int) -> np.ndarray:
    """Frame 0 -> time t: frame 0's corners moved linearly to H(corners) (the convention)."""
    c = np.asarray([[0, 0], [w, 0], [w, hgt], [0, hgt]], np.float32)
    c1 = cv2.perspectiveTransform(c.reshape(-1, 1, 2), h).reshape(-1, 2)
    return cv2.getPerspectiveTransform(c, (c + t * (c1 - c)).astype(np.float32))


def _move(rng: np.random.Generator, kind: str, w: int, hgt: int) -> np.ndarray:
    """A camera move as the homography frame 0 -> frame 1 (pan, zoom and/or roll)."""
    pan = np.eye(3)
    zoom_roll = np.eye(3)
    if "pan" in kind:
        share, angle = rng.uniform(0.05, 0.10), rng.uniform(0, 2 * np.pi)
        pan[:2, 2] = share * w * np.cos(angle), share * w * np.sin(angle) * 0.5
    scale, degrees = 1.0, 0.0
    if "zoom" in kind:
        z = rng.uniform(0.06, 0.18)
        scale = 1.0 + z if rng.random() < 0.5 else 1.0 / (1.0 + z)
    if "roll" in kind:
        degrees = rng.uniform(1.5, 3.0) * rng.choice([-1.0, 1.0])
    zoom_roll[:2] = cv2.getRotationMatrix2D((w / 2, hgt / 2), degrees, scale)
    return pan @ zoom_roll


KINDS = ("pan", "zoom", "roll", "pan+zoom", "zoom+roll", "pan+roll", "pan+zoom+roll")


def camera_sources(dev2: Path, per_clip: int = 2) -> list[Path]:
    """Photos for the virtual camera: dev2 triplet first frames at least 640×360,
    at most ``per_clip`` per source clip (sorted, so the set is the same every run)."""
    chosen: dict[str, list[Path]] = {}
    for seq in folders(dev2, "triplets/*"):
        clip = seq.name.rsplit("_f", 1)[0]
        img = cv2.imread(str(seq / "first.png"), cv2.IMREAD_UNCHANGED)
        if img is None or img.shape[1] < 640 or img.shape[0] < 360:
            continue
        if len(chosen.setdefault(clip, [])) < per_clip:
            chosen[clip].append(seq / "first.png")
    return [p for paths in chosen.values() for p in paths]


def _world(photo: np.ndarray) -> np.ndarray:
    """The photo cropped to 16:9 and scaled to ``_WORLD`` times the output size."""
    w, hgt = CAMERA_SIZE
    ph, pw = photo.shape[:2]
    cw = min(pw, round(ph * w / hgt))
    ch = min(ph, round(cw * hgt / w))
    x0, y0 = (pw - cw) // 2, (ph - ch) // 2
    size = (round(w * _WORLD), round(hgt * _WORLD))
    area = cw >= size[0]
    return cv2.resize(photo[y0:y0 + ch, x0:x0 + cw], size,
                      interpolation=cv2.INTER_AREA if area else cv2.INTER_CUBIC)


def camera_sample(photo: np.ndarray, index: int) -> tuple[Sample, np.ndarray]:
    """(sample, H): frames of a virtual camera over ``photo`` and its exact move."""
    w, hgt = CAMERA_SIZE
    world = _world(photo)
    view0 = np.eye(3)
    view0[:2, 2] = -(world.shape[1] - w) / 2, -(world.shape[0] - hgt) / 2  # world -> frame 0
    kind = KINDS[index % len(KINDS)]
    h = _move(np.random.default_rng(1000 + index), kind, w, hgt)

    def shot(m: np.ndarray) -> np.ndarray:
        return cv2.warpPerspective(world, m @ view0, (w, hgt), flags=cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_REFLECT_101)

    gts = {t: shot(camera_at(h, t, w, hgt)) for t in CAMERA_TIMES}
    return (f"cam{index:02d}_{kind}", shot(np.eye(3)), shot(h), gts), h


# --------------------------------------------------------------------------- reference methods


def _warp(img: np.ndarray, flow: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return cv2.remap(img, xy + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def plain_dis(first: np.ndarray, last: np.ndarray, times: list[float]) -> list[np.ndarray]:
    """The baseline every engine change is measured against (see the module docstring)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    g0, g1 = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (first, last))
    return plain_warps(first, last, times, dis.calc(g0, g1, None), dis.calc(g1, g0, None))


def plain_warps(first: np.ndarray, last: np.ndarray, times: list[float], f01: np.ndarray,
                f10: np.ndarray) -> list[np.ndarray]:
    """The plain baseline's frames from given flows both ways: the linear flow approximation
    to time t, bilinear backward warps of both ends, blended by time."""
    hgt, w = first.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(hgt, dtype=np.float32))
    xy = np.dstack([xs, ys])
    out = []
    for t in times:
        ft0 = -(1 - t) * t * f01 + t * t * f10
        ft1 = (1 - t) ** 2 * f01 - t * (1 - t) * f10
        w0, w1 = _warp(first, ft0, xy), _warp(last, ft1, xy)
        out.append(cv2.addWeighted(w0, 1 - t, w1, t, 0.0))
    return out


def oracle(first: np.ndarray, last: np.ndarray, times: list[float], h: np.ndarray
           ) -> list[np.ndarray]:
    """Exact homography path, each pixel from the end frames that saw it."""
    hgt, w = first.shape[:2]
    inside = np.full((hgt, w), 255, np.uint8)
    out = []
    for t in times:
        ht = camera_at(h, t, w, hgt)
        to1 = ht @ np.linalg.inv(h)
        frames, seen = [], []
        for img, m in ((first, ht), (last, to1)):
            frames.append(cv2.warpPerspective(img, m, (w, hgt), flags=cv2.INTER_LINEAR,
                                              borderMode=cv2.BORDER_REPLICATE))
            seen.append(cv2.warpPerspective(inside, m, (w, hgt), flags=cv2.INTER_NEAREST) > 0)
        a = (1 - t) * seen[0] + 1e-6
        b = t * seen[1] + 1e-6
        wb = (b / (a + b))[..., None]
        out.append(np.rint(frames[0] * (1 - wb) + frames[1] * wb).astype(np.uint8))
    return out
