"""Per-frame work of the ``flow`` engine: flows at time t, visibility, and the two warps.

Everything that depends on the time t but not on the output resolution is computed at the
working size, at a few key times, and interpolated in between (it changes slowly with t).
The only full-resolution work per frame is: one bilinear resize of each sampling map, one
fixed-point ``cv2.remap`` per end frame, and the blend. Those OpenCV calls release the GIL,
so a frame can be made while the encoder compresses the previous one.

Sharpness: bilinear sampling at fractional positions is a low-pass filter, and every
in-between frame samples at fractional positions. Both end frames are therefore doubled
once (Lanczos half-pixel interpolation, originals kept at the even positions) and the warps
sample the large copies: bilinear on a Lanczos-doubled image is close to Lanczos sampling
(+1.1 dB on the development set) at about a third of the price of ``INTER_CUBIC``
remapping, and a still pixel is reproduced exactly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from segue.engines.flow.parallel import both


def grid(w: int, hgt: int) -> np.ndarray:
    """H×W×2 float32 pixel coordinates (x, y)."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(hgt, dtype=np.float32))
    return np.dstack([xs, ys])


def sample(field: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """``field`` read at absolute positions ``coords`` (H×W×2), bilinear, edges replicated."""
    return cv2.remap(field, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def median(values: np.ndarray) -> np.floating:
    """``np.median(values)`` (same value) for arrays without NaN.

    Why not np.median: its NaN check imports ``numpy.ma`` on first use, about 20 ms in the
    middle of the pair analysis, before the first in-between frame.
    """
    flat = values.ravel()
    half = flat.size // 2
    if flat.size % 2:
        return np.partition(flat, half)[half]
    return np.partition(flat, (half - 1, half))[half - 1:half + 1].mean()


def front_weight(fwd: np.ndarray) -> np.ndarray:
    """Splatting weight of each pixel of ``fwd`` (flattened): exponentially more for pixels
    moving against the bulk of the frame by more than 4 px (see ``reverse_flow``).

    It does not depend on the time, so it is computed once per flow, not once per key time
    (the two medians were a fifth of each ``reverse_flow``).
    """
    vx, vy = fwd[..., 0].ravel(), fwd[..., 1].ravel()
    rel = np.hypot(vx - median(vx), vy - median(vy))
    return np.exp(np.minimum(np.maximum(rel - 4.0, 0.0), 40.0) * 0.3)


_PAD = 2  # border cells around the splatting grid that catch taps outside the frame


def reverse_flow(fwd: np.ndarray, bwd: np.ndarray, t: float, xy: np.ndarray,
                 front: np.ndarray | None = None) -> np.ndarray:
    """Flow from time t back to the source frame, per unit of time, by forward splatting.

    Each source pixel p lands at ``p + t·fwd(p)`` at time t and carries ``-fwd(p)`` there
    (bilinear splat, averaged); pixels nothing lands on (disocclusions) take ``bwd(x)``, the
    other direction's flow, which is right for the background that appears there. Where
    several pixels land on one spot, those moving against the bulk of the frame (by more than
    4 px) weigh exponentially more: an object that moves on its own is in front of what it
    passes over, which a plain average would smear into the background. ``front`` is
    ``front_weight(fwd)``, when the caller keeps it.

    The splat goes to a grid with a border of ``_PAD`` cells, and positions are clipped into
    that border, so a tap outside the frame lands on a cell that is dropped: no masking and
    compacting of the taps that stay inside (-40 % of the time). Every cell of the frame gets
    the same sums, in the same order, as with masking.
    """
    if t <= 0.0:
        return -fwd
    if front is None:
        front = front_weight(fwd)
    hgt, w = fwd.shape[:2]
    pw, cells = w + 2 * _PAD, (w + 2 * _PAD) * (hgt + 2 * _PAD)
    pos = (xy + np.float32(t) * fwd).reshape(-1, 2)
    base = np.floor(pos)
    frac = pos - base
    start = (np.clip(base[:, 1], -_PAD, hgt).astype(np.int64) + _PAD) * pw
    start += np.clip(base[:, 0], -_PAD, w).astype(np.int64) + _PAD
    del pos, base  # a key is made while other threads make frames: keep its peak small
    vx, vy = fwd[..., 0].ravel(), fwd[..., 1].ravel()
    fx, fy = frac[:, 0], frac[:, 1]
    acc = np.zeros((3, cells), np.float64)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        wt = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy) * front
        idx = start + (dy * pw + dx)
        acc[0] += np.bincount(idx, wt * vx, minlength=cells)
        acc[1] += np.bincount(idx, wt * vy, minlength=cells)
        acc[2] += np.bincount(idx, wt, minlength=cells)
    acc = acc.reshape(3, hgt + 2 * _PAD, pw)[:, _PAD:_PAD + hgt, _PAD:_PAD + w]
    flow = np.empty((hgt, w, 2), np.float32)
    denom = -np.maximum(acc[2], 1e-6)
    for c in (0, 1):  # float64 quotients rounded to float32, as an astype would
        np.divide(acc[c], denom, out=flow[..., c], casting="unsafe")
    holes = acc[2] < 0.05
    flow[holes] = bwd[holes]
    return flow


def inside(pos: np.ndarray) -> np.ndarray:
    """1 where ``pos`` (H×W×2, on this grid) lies in the frame, falling to 0 one pixel out.

    Content that enters or leaves the frame was seen by one end only: the other end's
    sample there is a replicated border (streaks), so it must get no weight.
    """
    hgt, w = pos.shape[:2]
    x, y = pos[..., 0], pos[..., 1]
    out = np.maximum(np.maximum(-x, x - (w - 1)), np.maximum(-y, y - (hgt - 1)))
    return np.clip(1.0 - out, 0.0, 1.0).astype(np.float32)


def visibility_weight(to0: np.ndarray, to1: np.ndarray, t: float, xy: np.ndarray
                      ) -> np.ndarray:
    """Blend weight of frame 1 at time t, lowered where frame 1 cannot see the pixel.

    Pixel x at time t comes from p0 in frame 0 and p1 in frame 1; an end whose sample falls
    outside its frame gets no weight (content entering or leaving the frame). Visibility
    inside the frame is not judged from forward/backward flow agreement: that check (soft,
    Gaussian in the mismatch) helped where flows are clean but cost real footage, where
    blur, noise and compression make the flows disagree on visible pixels (8-step windows
    −0.11 dB, 24-step −0.08, Middlebury −0.06 with it). The weights ``(1-t)·v0`` and
    ``t·v1`` are normalised; where neither end sees the pixel it stays ``t``.
    """
    kernel = np.ones((3, 3), np.uint8)
    v0 = cv2.erode(inside(cv2.scaleAdd(to0, t, xy)), kernel)
    v1 = cv2.erode(inside(cv2.scaleAdd(to1, 1.0 - t, xy)), kernel)
    w0, w1 = (1.0 - t) * (v0 + 0.05), t * (v1 + 0.05)
    return (w1 / (w0 + w1)).astype(np.float32)


@dataclass
class _Key:
    to0: np.ndarray  # flow from time t to frame 0, per unit of time (map size)
    to1: np.ndarray
    w1: np.ndarray | None  # blend weight of frame 1; None where it is just t everywhere
    tiles: np.ndarray  # TILES×TILES booleans: where w1 differs from t


TILES = 16  # the frame is cut into TILES×TILES blocks; only those seen by one end are re-blended


class Timeline:
    """Flows and weights at ``keys`` evenly spaced times, linearly interpolated in between.

    Flows are stored per unit of time (divided by t or 1-t), so they change slowly with t.
    """

    def __init__(self, f01: np.ndarray, f10: np.ndarray, keys: int, occlusion: bool) -> None:
        self.f01, self.f10, self.keys, self.occlusion = f01, f10, max(2, keys), occlusion
        self.xy = grid(f01.shape[1], f01.shape[0])
        self.front01, self.front10 = both(front_weight, (f01,), (f10,))
        self.cache: dict[int, _Key] = {}
        self.lock = threading.Lock()  # frames may be made by several threads at once

    def _key(self, k: int) -> _Key:
        with self.lock:
            key = self.cache.get(k)
            if key is None:
                key = self.cache[k] = self._make(k)
            return key

    def _make(self, k: int) -> _Key:
        t = k / (self.keys - 1)
        to0 = reverse_flow(self.f01, self.f10, t, self.xy, self.front01)
        to1 = reverse_flow(self.f10, self.f01, 1.0 - t, self.xy, self.front10)
        w1, tiles = None, np.zeros((TILES, TILES), bool)
        if self.occlusion and 0.0 < t < 1.0:
            w1 = visibility_weight(to0, to1, t, self.xy)
            off = (np.abs(w1 - t) > 0.02).astype(np.float32)
            tiles = cv2.resize(off, (TILES, TILES), interpolation=cv2.INTER_AREA) > 0
        return _Key(to0, to1, w1, tiles)

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """(to0, to1, weight of frame 1 or None, busy tiles) at time t."""
        pos = t * (self.keys - 1)
        k = min(int(pos), self.keys - 2)
        with self.lock:  # times only move forward in a video (give or take a worker)
            for old in [key for key in self.cache if key < k - 1]:
                del self.cache[old]
            if k not in self.cache and k + 1 not in self.cache:  # the first frame: both at once
                self.cache[k], self.cache[k + 1] = both(self._make, (k,), (k + 1,))
        f = pos - k
        a, b = self._key(k), self._key(k + 1)
        to0 = cv2.addWeighted(a.to0, 1 - f, b.to0, f, 0)
        to1 = cv2.addWeighted(a.to1, 1 - f, b.to1, f, 0)
        tiles = a.tiles | b.tiles
        if not tiles.any() or (a.w1 is None and b.w1 is None):
            return to0, to1, None, tiles
        wa = a.w1 if a.w1 is not None else np.full_like(b.w1, t)
        wb = b.w1 if b.w1 is not None else np.full_like(wa, t)
        return to0, to1, cv2.addWeighted(wa, 1 - f, wb, f, 0), tiles


def _half_pixel_kernel() -> np.ndarray:
    """8-tap Lanczos (a=4) weights that interpolate the value half a pixel to the right."""
    d = np.arange(8) - 3.5
    k = np.sinc(d) * np.sinc(d / 4)
    return (k / k.sum()).astype(np.float32).reshape(1, 8)


_HALF = _half_pixel_kernel()


def double(img: np.ndarray) -> np.ndarray:
    """``img`` at twice the size with the original pixels kept at the even positions.

    Pixel (x, y) of ``img`` is pixel (2x, 2y) of the result, so a warp that does not move
    reproduces the frame exactly; the odd positions are Lanczos half-pixel interpolants.
    Separable filtering plus interleaving: a few times cheaper than a Lanczos warpAffine.
    """
    hgt, w = img.shape[:2]
    border = cv2.BORDER_REPLICATE
    # (row, even/odd row, column, even/odd column): the vertical pass writes the odd rows
    # in place, with no interleaving copy
    big = np.empty((hgt, 2, w, 2, *img.shape[2:]), img.dtype)
    big[:, 0, :, 0] = img
    big[:, 0, :, 1] = cv2.filter2D(img, -1, _HALF, anchor=(3, 0), borderType=border)
    wide, odd = (big[:, k].reshape(hgt, 2 * w, *img.shape[2:]) for k in (0, 1))
    cv2.filter2D(wide, -1, _HALF.T, dst=odd, anchor=(0, 3), borderType=border)
    return big.reshape(2 * hgt, 2 * w, *img.shape[2:])


def enlarge(first: np.ndarray, last: np.ndarray, upsample: int) -> list[np.ndarray]:
    """The two end frames as the warps sample them: doubled (``upsample`` 2) or as they are."""
    if upsample not in (1, 2):
        raise ValueError(f"upsample must be 1 or 2, got {upsample}")
    if upsample == 1:
        return [first, last]
    return list(both(double, (first,), (last,)))


def map_levels(w: int, hgt: int, work_side: int) -> int:
    """How many times the per-frame maps are halved (then rebuilt with ``cv2.pyrUp``).

    Maps are made at about the flow's working size, but always at a power-of-two fraction
    of the output size, so that doubling them back is a single, exact, fast ``pyrUp``.
    """
    levels = 0
    while max(w, hgt) / 2**levels > work_side:
        levels += 1
    return levels


def map_size(w: int, hgt: int, levels: int) -> tuple[int, int]:
    for _ in range(levels):
        w, hgt = (w + 1) // 2, (hgt + 1) // 2
    return w, hgt


def resample_flow(flow: np.ndarray, size: tuple[int, int], levels: int) -> np.ndarray:
    """A working-size flow expressed on the map grid of an output of ``size`` (w, h).

    Map pixel i sits on output pixel ``2**levels · i`` (the ``pyrUp`` alignment); the flow
    is read there (bilinear) and converted to map pixels.
    """
    w, hgt = size
    mw, mh = map_size(w, hgt, levels)
    sx, sy = flow.shape[1] / w, flow.shape[0] / hgt
    step = 2**levels
    xs = (np.arange(mw, dtype=np.float32) * step + 0.5) * sx - 0.5
    ys = (np.arange(mh, dtype=np.float32) * step + 0.5) * sy - 0.5
    at = np.dstack(np.meshgrid(xs, ys)).astype(np.float32)
    out = sample(flow, at) / np.asarray([sx * step, sy * step], np.float32)
    return out.astype(np.float32)


@dataclass(frozen=True)
class _Band:
    """Rows ``y0:y1`` of the output, made from map rows ``a:b`` (see ``Warper._bands``)."""

    y0: int
    y1: int
    a: int
    b: int
    tiles: slice  # the rows of the TILES×TILES grid this band overlaps
    fix_rows: np.ndarray  # rows of the band whose map y needs the ``_fixes`` correction
    fix_dy: np.ndarray  # those corrections, one per row (a column vector)


def _margins(levels: int) -> tuple[int, int]:
    """Map rows a band needs above and below its own so that ``pyrUp`` grows it exactly.

    At each doubling the reflected border spoils the first grown row and the last two, and
    the rows grown from spoilt ones: 2**L - 1 rows at the top and 3·2**(L-1) - 1 at the
    bottom after L doublings, i.e. one map row above and at most two below.
    """
    if not levels:
        return 0, 0
    top, bottom = 2**levels - 1, 3 * 2 ** (levels - 1) - 1
    step = 2**levels
    return -(-top // step), -(-bottom // step)


def _runs(busy: list[bool]) -> list[tuple[int, int]]:
    """(first, end) of each run of True in ``busy``."""
    runs: list[tuple[int, int]] = []
    start = None
    for j, on in enumerate([*busy, False]):
        if on and start is None:
            start = j
        elif not on and start is not None:
            runs.append((start, j))
            start = None
    return runs


class Warper:
    """Makes full-resolution frames from map-size flows (see the module docstring)."""

    def __init__(self, first: np.ndarray, last: np.ndarray, levels: int, upsample: int,
                 big: list[np.ndarray] | None = None) -> None:
        """``big``: ``enlarge(first, last, upsample)`` when the caller made it already."""
        hgt, w = first.shape[:2]
        self.size, self.up, self.levels = (w, hgt), upsample, levels
        self.big = big if big is not None else enlarge(first, last, upsample)
        self.sizes = [map_size(w, hgt, k) for k in range(levels, -1, -1)]  # small -> full
        self.gain = float(self.up * 2**levels)  # map-pixel flow -> big-source displacement
        mw, mh = self.sizes[0]
        xs = np.arange(mw, dtype=np.float32) * self.gain
        ys = np.arange(mh, dtype=np.float32) * self.gain
        self.base = np.dstack(np.meshgrid(xs, ys)).astype(np.float32)
        self.scratch = threading.local()
        self._fixes(w, hgt)
        self.bands = self._bands()

    def _grow(self, small: np.ndarray) -> np.ndarray:
        for size in self.sizes[1:]:
            small = cv2.pyrUp(small, dstsize=size)
        return small

    def _fixes(self, w: int, hgt: int) -> None:
        """Columns/rows where growing the base grid is not exact (borders, odd sizes).

        ``pyrUp`` reproduces a linear ramp exactly except at the borders (it reflects
        there); the x error depends on the column only and the y error on the row only,
        so a few per-column and per-row corrections make the maps exact.
        """
        up = self._grow(self.base)
        ex = np.arange(w, dtype=np.float32) * self.up
        ey = np.arange(hgt, dtype=np.float32) * self.up
        dx, dy = ex - up[0, :, 0], ey - up[:, 0, 1]
        cols = np.flatnonzero(np.abs(dx) > 1e-3)
        # runs of neighbouring columns (the borders): corrected through slices, not indices
        self.cols = [(int(run[0]), int(run[-1]) + 1, dx[run])
                     for run in np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1) if run.size]
        self.rows = np.flatnonzero(np.abs(dy) > 1e-3)
        self.dy = dy[self.rows]

    def _bands(self) -> list[_Band]:
        """Row bands of the output, each with the map rows it is grown from.

        Frames are made band by band so that the maps, both warps and the blend of a band
        stay in the CPU cache: per frame, memory traffic rather than arithmetic is the cost.
        """
        w, hgt = self.size
        step, (_, mh) = 2**self.levels, self.sizes[0]
        above, below = _margins(self.levels)
        rows = max(32, 8 * step)
        bands = []
        for y0 in range(0, hgt, rows):
            y1 = min(hgt, y0 + rows)
            a, b = max(0, y0 // step - above), min(mh, -(-y1 // step) + below)
            fix = (self.rows >= y0) & (self.rows < y1)
            tiles = slice(y0 * TILES // hgt, (y1 - 1) * TILES // hgt + 1)
            bands.append(_Band(y0, y1, a, b, tiles, self.rows[fix] - y0,
                               self.dy[fix][:, None]))
        return bands

    def _buf(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        """A scratch array of this thread, reused from frame to frame.

        Fresh band-sized temporaries every frame cost page faults and let each worker's
        allocator arena grow; reusing them keeps the per-frame work in cache and RSS flat.
        """
        store: dict[tuple[str, tuple[int, ...]], np.ndarray] | None = getattr(
            self.scratch, "arrays", None)
        if store is None:
            store = self.scratch.arrays = {}
        key = (name, shape)
        if key not in store:
            store[key] = np.empty(shape, dtype)
        return store[key]

    def _grow_band(self, small: np.ndarray, band: _Band, name: str) -> np.ndarray:
        """Rows y0:y1 of ``_grow(whole map)``, made from its map rows a:b only."""
        small, top = small[band.a:band.b], band.a
        for level, (w, hgt) in enumerate(self.sizes[1:]):
            rows = min(hgt - 2 * top, 2 * small.shape[0])
            dst = self._buf(f"{name}{level}", (rows, w, *small.shape[2:]))
            small = cv2.pyrUp(small, dst=dst, dstsize=(w, rows))
            top *= 2
        return small[band.y0 - top:band.y1 - top]

    def _grow_block(self, small: np.ndarray, band: _Band, x0: int, x1: int) -> np.ndarray:
        """Columns x0:x1 of ``_grow_band(small, band)``, made from the map columns they need
        (the same margins as rows: ``pyrUp`` treats both axes alike)."""
        above, below = _margins(self.levels)
        step, (mw, _) = 2**self.levels, self.sizes[0]
        c0, c1 = max(0, x0 // step - above), min(mw, -(-x1 // step) + below)
        small, top, left = small[band.a:band.b, c0:c1], band.a, c0
        for w, hgt in self.sizes[1:]:
            rows = min(hgt - 2 * top, 2 * small.shape[0])
            cols = min(w - 2 * left, 2 * small.shape[1])
            small = cv2.pyrUp(small, dstsize=(cols, rows))
            top, left = 2 * top, 2 * left
        return small[band.y0 - top:band.y1 - top, x0 - left:x1 - left]

    def _maps(self, small: np.ndarray, band: _Band, name: str) -> tuple[np.ndarray, np.ndarray]:
        full = self._grow_band(small, band, "grow")
        if not self.levels:
            full = full.copy()  # the slice of the small map itself: do not correct it in place
        for c0, c1, dx in self.cols:
            full[:, c0:c1, 0] += dx
        if band.fix_rows.size:
            full[band.fix_rows, :, 1] += band.fix_dy
        shape = full.shape[:2]
        return cv2.convertMaps(full, None, cv2.CV_16SC2,
                               dstmap1=self._buf(name + "xy", (*shape, 2), np.int16),
                               dstmap2=self._buf(name + "f", shape, np.uint16))

    def _warp(self, end: int, small: np.ndarray, band: _Band) -> np.ndarray:
        """Band ``band`` of end frame ``end`` warped by the map-size sampling map ``small``."""
        map1, map2 = self._maps(small, band, "map")
        dst = self._buf(f"end{end}", (band.y1 - band.y0, self.size[0], 3), np.uint8)
        return cv2.remap(self.big[end], map1, map2, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE, dst=dst)

    def frame(self, line: Timeline, t: float) -> np.ndarray:
        """The in-between frame at time t: both ends warped to t and blended, band by band."""
        to0, to1, w1, tiles = line.at(t)  # fresh arrays: the maps are made in them
        s0 = cv2.scaleAdd(to0, self.gain * t, self.base, dst=to0)
        s1 = cv2.scaleAdd(to1, self.gain * (1.0 - t), self.base, dst=to1)
        w, hgt = self.size
        out = np.empty((hgt, w, 3), np.uint8)
        for band in self.bands:
            x, y = self._warp(0, s0, band), self._warp(1, s1, band)
            dst = out[band.y0:band.y1]
            cv2.addWeighted(x, 1.0 - t, y, t, 0.0, dst=dst)
            if w1 is None:
                continue
            busy = cast(list[bool], tiles[band.tiles].any(axis=0).tolist())
            for j0, j1 in _runs(busy):
                self._reblend(dst, x, y, w1, band, w * j0 // TILES, w * j1 // TILES)
        return out

    def _reblend(self, out: np.ndarray, a: np.ndarray, b: np.ndarray, w1: np.ndarray,
                 band: _Band, x0: int, x1: int) -> None:
        """Blend columns x0:x1 of a band by visibility (the weight of frame 1, ``w1``, at the
        map size), where that differs from blending by time."""
        wf = self._grow_block(w1, band, x0, x1)
        cv2.blendLinear(a[:, x0:x1], b[:, x0:x1], 1.0 - wf, wf, dst=out[:, x0:x1])
