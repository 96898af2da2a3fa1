"""Subjects carried as layers at the output size (see ``subjects`` for how they are found).

A subject found in both frames is taken out of the pair: each end frame gets a *plate* in
which the subject's pixels are replaced by the background the other frame shows there (after
camera alignment), so the dense flow and the blend see only background and leave no ghost
where the subject was or will be. Background that neither frame shows (where the subject
covers it at both ends, which a straight move keeps covered in between) is inpainted.

At time t each subject is drawn once, over the background made from the plates: both ends'
pictures of it, with soft edges, carried along its path and blended by time (and by which
end saw each of its pixels: what another subject hides of it at one end comes from the other
end alone). Subjects are drawn back to front: one that covers, at an end, a part of where
another would be is in front of it. A subject's path: the corners of its box move on
straight lines at constant speed from where frame 0 has them to where frame 1 has them
(camera and the subject's own move composed), as the camera path does for the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from segue.engines.flow.matching import warp_mask
from segue.engines.flow.subjects import Subject
from segue.engines.flow.warp import double, grid

_FEATHER = 1.0  # px at the working size: the soft edge of a subject's alpha


@dataclass(frozen=True)
class _Sprite:
    """One end frame's picture of a subject: a box cut around it, with its soft alpha."""

    picture: np.ndarray  # uint8 RGB, the box of the end frame
    keys: np.ndarray  # float32 (alpha, 1) over the box: what is outside it was not seen
    origin: np.ndarray  # 3×3: box pixels -> end-frame pixels


@dataclass(frozen=True)
class _Layer:
    sprite0: _Sprite
    sprite1: _Sprite  # in frame-1 pixels
    path: np.ndarray  # 3×3: frame-0 pixels of the subject -> frame-1 pixels
    box: np.ndarray  # 4×2 float32 corners of the subject's box in frame 0


def _sprite(frame: np.ndarray, alpha: np.ndarray, hidden: np.ndarray | None = None
            ) -> _Sprite:
    """The part of ``frame`` that ``alpha`` covers, with a margin (soft edges, rounding);
    ``hidden``: the alpha of what stands in front of it in that frame (not seen there)."""
    hgt, w = alpha.shape
    x, y, bw, bh = cv2.boundingRect((alpha > 0.01).astype(np.uint8))
    pad = 4 + max(bw, bh) // 10
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(w, x + bw + pad), min(hgt, y + bh + pad)
    a = alpha[y0:y1, x0:x1]
    seen = np.ones_like(a) if hidden is None else 1.0 - hidden[y0:y1, x0:x1]
    origin = np.asarray([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    return _Sprite(frame[y0:y1, x0:x1].copy(), cv2.merge([a, seen]), origin)


def _corners(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.asarray([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


def _project(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), h).reshape(-1, 2)


class Layers:
    """The subjects of one pair at the output size: the plates, and each frame's subjects."""

    def __init__(self, first: np.ndarray, last: np.ndarray, subjects: list[Subject],
                 camera: np.ndarray | None, scale: tuple[float, float]) -> None:
        """``camera``: output-size homography frame 0 -> frame 1 (None: still); ``scale``:
        (x, y) working size ÷ output size, the size ``subjects`` were found at."""
        self.first, self.last = first, last
        hgt, w = first.shape[:2]
        self.size = (w, hgt)
        self.camera = np.eye(3) if camera is None else camera
        to_work = np.diag([scale[0], scale[1], 1.0])
        subjects = _back_to_front(subjects)
        alphas = [self._alphas(s) for s in subjects]
        self.layers = [self._layer(s, to_work, alphas[i], alphas[i + 1:])
                       for i, s in enumerate(subjects)]
        self.plates = self._plates(np.maximum.reduce([a0 for a0, _ in alphas]),
                                   np.maximum.reduce([a1 for _, a1 in alphas]))

    def _upmask(self, mask: np.ndarray) -> np.ndarray:
        """A working-size 0/1 mask as a soft float32 alpha at the output size."""
        w, hgt = self.size
        soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), _FEATHER)
        return cv2.resize(soft, (w, hgt), interpolation=cv2.INTER_LINEAR)

    def _alphas(self, s: Subject) -> tuple[np.ndarray, np.ndarray]:
        """The whole-frame alphas of ``s`` in frame 0 and in frame 1."""
        w, hgt = self.size
        # mask1 is in camera-aligned frame-1 pixels: brought to frame 1 itself
        return self._upmask(s.mask0), cv2.warpPerspective(
            self._upmask(s.mask1), self.camera, (w, hgt), flags=cv2.INTER_LINEAR)

    def _layer(self, s: Subject, to_work: np.ndarray, alphas: tuple[np.ndarray, np.ndarray],
               front: list[tuple[np.ndarray, np.ndarray]]) -> _Layer:
        """The layer of ``s`` (whole-frame ``alphas`` at each end), drawn behind the subjects
        of ``front``: what they cover at an end, that end did not see of ``s``."""
        move = np.linalg.inv(to_work) @ s.move @ to_work  # output size, aligned coordinates
        x, y, bw, bh = s.box
        pad = 3 * _FEATHER + 2
        box = _corners((x - pad) / to_work[0, 0], (y - pad) / to_work[1, 1],
                       (bw + 2 * pad) / to_work[0, 0], (bh + 2 * pad) / to_work[1, 1])
        frames = (self.first, self.last)
        sprites = [_sprite(frames[e], alphas[e],
                           np.maximum.reduce([f[e] for f in front]) if front else None)
                   for e in (0, 1)]
        return _Layer(sprites[0], sprites[1], self.camera @ move, box)

    # ----------------------------------------------------------------------- plates

    def _plates(self, a0: np.ndarray, a1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two end frames with every subject (all alphas: ``a0``, ``a1``) replaced by the
        background behind it."""
        plate0, box0 = _plate(self.first, self.last, a0, a1, np.linalg.inv(self.camera))
        plate1, box1 = _plate(self.last, self.first, a1, a0, self.camera)
        self.boxes = (box0, box1)  # where each plate differs from its frame
        return plate0, plate1

    def enlarged(self, big: list[np.ndarray], upsample: int) -> list[np.ndarray]:
        """``enlarge(first, last, upsample)`` (``big``) made into that of the plates: only
        the box where a plate differs from its frame is doubled again."""
        if upsample == 1:
            return list(self.plates)
        return [_redouble(whole, plate, box)
                for whole, plate, box in zip(big, self.plates, self.boxes, strict=True)]

    # ----------------------------------------------------------------------- frames

    def draw(self, frame: np.ndarray, t: float) -> np.ndarray:
        """``frame`` (the background at time t) with every subject drawn over it, in place."""
        for layer in self.layers:
            self._draw(frame, layer, t)
        return frame

    def _draw(self, frame: np.ndarray, layer: _Layer, t: float) -> None:
        w, hgt = self.size
        to_t = cv2.getPerspectiveTransform(
            layer.box, (layer.box + t * (_project(layer.path, layer.box) - layer.box))
            .astype(np.float32))
        from_1 = to_t @ np.linalg.inv(layer.path)
        spot = _project(to_t, layer.box)
        x0, y0 = np.floor(spot.min(axis=0)).astype(int)
        x1, y1 = np.ceil(spot.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(hgt, y1)
        if x1 <= x0 or y1 <= y0:
            return
        shift = np.asarray([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
        roi = (x1 - x0, y1 - y0)
        c0, k0 = _warp(layer.sprite0, shift @ to_t, roi)
        c1, k1 = _warp(layer.sprite1, shift @ from_1, roi)
        # Each end weighs by time where it saw the pixel (k: alpha, seen); the subject's
        # alpha and colour are those weights' blend of the two ends' alphas and colours,
        # laid over the background: a convex blend of the three, in one pass.
        w0, w1 = (1.0 - t) * k0[..., 1], t * k1[..., 1]
        seen = np.maximum(w0 + w1, 1e-6)
        g0, g1 = w0 * k0[..., 0] / seen, w1 * k1[..., 0] / seen
        under = frame[y0:y1, x0:x1].astype(np.float32)
        out = under * (1.0 - g0 - g1)[..., None] + c0 * g0[..., None] + c1 * g1[..., None]
        frame[y0:y1, x0:x1] = cv2.convertScaleAbs(out)  # rounded, within 0..255


def _back_to_front(subjects: list[Subject]) -> list[Subject]:
    """``subjects`` in the order they are drawn: one that covers at an end where another
    would be (had it moved as a whole) is in front of it, drawn after it. Otherwise (and
    where the subjects do not agree on an order) as given."""
    n = len(subjects)
    if n < 2:
        return subjects
    ahead = np.zeros((n, n), np.int64)  # ahead[i, j]: pixels of j's place that i covers
    for j, s in enumerate(subjects):
        places = (warp_mask(s.mask1, np.linalg.inv(s.move)), warp_mask(s.mask0, s.move))
        for i, o in enumerate(subjects):
            if i != j:
                ahead[i, j] = sum(np.count_nonzero(p & m) for p, m in
                                  zip(places, (o.mask0, o.mask1), strict=True))
    order: list[int] = []
    left = list(range(n))
    while left:  # next, one that is in front of none of the others left
        free = [j for j in left if not any(ahead[j, i] > ahead[i, j] for i in left if i != j)]
        pick = free[0] if free else left[0]
        order.append(pick)
        left.remove(pick)
    return [subjects[i] for i in order]


def _warp(sprite: _Sprite, h: np.ndarray, roi: tuple[int, int]
          ) -> tuple[np.ndarray, np.ndarray]:
    """The sprite's picture (float32) and (alpha, seen), carried by ``h`` (end-frame pixels
    -> ``roi`` pixels) into an ``roi``-sized box."""
    h = h @ sprite.origin
    colour = cv2.warpPerspective(sprite.picture, h, roi, flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    keys = cv2.warpPerspective(sprite.keys, h, roi, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return colour, keys


def _redouble(whole: np.ndarray, plate: np.ndarray, box: tuple[int, int, int, int]
              ) -> np.ndarray:
    """``double(plate)``, given ``whole`` = ``double`` of a frame that differs from ``plate``
    only inside ``box``: the box and a margin are doubled, and the part that the filter's
    reach leaves exact is pasted in."""
    reach = 4  # the doubling filter's half-width, in source pixels
    hgt, w = plate.shape[:2]
    x, y, bw, bh = box
    x0, y0 = max(0, x - 2 * reach), max(0, y - 2 * reach)
    x1, y1 = min(w, x + bw + 2 * reach), min(hgt, y + bh + 2 * reach)
    part = double(plate[y0:y1, x0:x1])
    # columns/rows within the reach of a cut edge (not the frame's own) are not exact
    a0, b0 = (0 if x0 == 0 else reach), (0 if y0 == 0 else reach)
    a1, b1 = (x1 - x0) - (0 if x1 == w else reach), (y1 - y0) - (0 if y1 == hgt else reach)
    out = whole.copy()
    out[2 * (y0 + b0):2 * (y0 + b1), 2 * (x0 + a0):2 * (x0 + a1)] = \
        part[2 * b0:2 * b1, 2 * a0:2 * a1]
    return out


def _plate(own: np.ndarray, other: np.ndarray, mine: np.ndarray, theirs: np.ndarray,
           to_own: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``own`` with its subjects (alpha ``mine``) replaced by what ``other`` shows there once
    brought onto ``own`` by the camera (``to_own``); where ``other`` has a subject too
    (``theirs``, in its own pixels) or did not see, inpainted. Also the box (x, y, w, h)
    outside which the plate is ``own``: all the work is done in it."""
    hgt, w = own.shape[:2]
    # the subject's soft edge is replaced too: a fringe left in the plate would be a ghost
    take = cv2.dilate((mine > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8))
    x, y, bw, bh = cv2.boundingRect(take)
    pad = 16  # context for the inpainting and room for the soft edge
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(w, x + bw + pad), min(hgt, y + bh + pad)
    size = (x1 - x0, y1 - y0)
    to_box = np.asarray([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ to_own
    back = cv2.warpPerspective(other, to_box, size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
    covered = cv2.warpPerspective(theirs, to_box, size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
    roi = (slice(y0, y1), slice(x0, x1))
    hole = (take[roi] > 0) & (covered > 0.02)
    # inpainted from what is background: the other frame inside the subject's place where
    # it saw past its own subjects, this frame around it (there the other frame may show
    # another subject: one that went where this one was)
    fill = _inpaint(np.where(take[roi][..., None] > 0, back, own[roi]), hole) if hole.any() \
        else back
    weight = cv2.GaussianBlur(take[roi].astype(np.float32), (0, 0), 1.0)[..., None]
    mixed = own[roi].astype(np.float32) + weight * (fill.astype(np.float32) - own[roi])
    plate = own.copy()
    plate[roi] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return plate, (x0, y0, size[0], size[1])


def _inpaint(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``img`` with ``hole`` filled from around it (Telea), worked at half size, since
    nothing in the hole is seen sharply in any frame."""
    hgt, w = img.shape[:2]
    k = 2 if min(w, hgt) >= 64 else 1
    small = cv2.resize(img, (w // k, hgt // k), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.uint8), (w // k, hgt // k),
                            interpolation=cv2.INTER_NEAREST)
    small_hole = cv2.dilate(small_hole, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, small_hole, 5, cv2.INPAINT_TELEA)
    big = cv2.resize(filled, (w, hgt), interpolation=cv2.INTER_LINEAR)
    return np.where(hole[..., None], big, img)


def background_flows(f01: np.ndarray, f10: np.ndarray, subjects: list[Subject],
                     camera: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The working-size flows of the pair made those of its plates: where a subject was or
    went (and a margin, where dense flow smeared it into its surroundings) the plates show
    background carried by the camera, so the camera's flow is exact there. No second dense
    flow is needed."""
    hgt, w = f01.shape[:2]
    h = np.eye(3) if camera is None else camera
    xy = grid(w, hgt)
    cam01 = cv2.perspectiveTransform(xy, h) - xy
    cam10 = cv2.perspectiveTransform(xy, np.linalg.inv(h)) - xy
    out01, out10 = f01.copy(), f10.copy()
    for s in subjects:
        _, _, bw, bh = s.box
        reach = max(5, round(0.15 * max(bw, bh))) | 1
        where = cv2.dilate(s.mask0 | s.mask1, np.ones((reach, reach), np.uint8))
        soft0 = cv2.GaussianBlur(where.astype(np.float32), (0, 0), 2.0)
        soft1 = cv2.warpPerspective(soft0, h, (w, hgt), flags=cv2.INTER_LINEAR)
        out01 += soft0[..., None] * (cam01 - out01)
        out10 += soft1[..., None] * (cam10 - out10)
    return out01, out10
