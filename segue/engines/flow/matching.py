"""Matching one changed region with itself in the other frame (see ``subjects``).

A region is searched for as a masked colour template, both ways, at its few best places
(and tried at the move its features agree on, and at each other changed region of about its
size: ``places``);
each place is confirmed or refused by finding the pixels the move explains, refining the
move on them (ECC), and checking that what was found is a thing that travelled rigidly.
Everything runs at the working size, on camera-aligned frames (both on frame 0's grid).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import cv2
import numpy as np

from segue.engines.flow.camera import distinct_matches
from segue.engines.flow.parallel import both
from segue.engines.flow.warp import median

CHANGED = 24  # colour levels (largest channel, smoothed) that mark a pixel as changed
_MIN_AREA_SHARE = 0.0004  # smallest region, as a share of the frame
MAX_AREA_SHARE = 0.25  # largest subject, as a share of the frame
_SUBJECT_AREA_SHARE = 0.0008  # smallest subject: smaller things are left to the flow
_COARSE = 4  # the template search runs at 1/4 of the working size first
_ROUNDS = 3  # rounds of fitting the move and finding the subject's pixels
_RIM = 0.15  # the search's template: the region and this share of its size around it
_MIN_CONTRAST = 8.0  # colour spread (std) a template needs to be worth searching for
_PEAKS = 3  # places of the template search tried, best first
_MIN_SCORE = 0.4  # normalised correlation a coarse match needs
_EXPLAINS = 0.45  # a subject's move must leave at most this share of the still error
MAX_ERROR = 12.0  # and at most this mean colour error over the subject
_MIN_SHAPE_IOU = 0.55  # overlap of the subject's mask moved and its mask in the other frame
_MAX_SCALE = 1.35  # largest change of size (either way)
_MAX_TURN = np.deg2rad(30)
_MIN_MOVE_PX = 10.0  # working-size px: dense flow follows shorter moves well
_COVERS = 0.75  # share of the changed pixels around a subject that it must explain
_FLAT_SPREAD = 8.0  # colour spread (std) below which a background counts as flat
_MIN_FEATURES = 6  # feature matches that must agree on a subject's move

_Found = tuple[np.ndarray, np.ndarray, np.ndarray, float]  # masks, move, error explained


def _largest_channel(rgb: np.ndarray) -> np.ndarray:
    """Per pixel, the largest of the three channels (``rgb.max(axis=2)``, a few times faster)."""
    r, g, b = cv2.split(rgb)
    return cv2.max(cv2.max(r, g), b)


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, the largest channel's absolute difference, smoothed (uint8)."""
    return cv2.GaussianBlur(_largest_channel(cv2.absdiff(a, b)), (0, 0), 1.0)


def mean_over(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask > 0].mean()) if mask.any() else 0.0


def column_medians(values: np.ndarray) -> np.ndarray:
    """``np.median(values, axis=0)`` of an N×k array (same values), through ``warp.median``:
    numpy's own imports ``numpy.ma`` on first use, 20 ms inside a render's first frame."""
    return np.asarray([median(values[:, c]) for c in range(values.shape[1])], values.dtype)


def least_area(hgt: int, w: int) -> float:
    """The smallest region worth matching (px at the working size)."""
    return max(24.0, _MIN_AREA_SHARE * hgt * w)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros_like(mask)
    cv2.drawContours(out, contours, -1, 1, -1)
    return out


class Features:
    """ORB features of both camera-aligned frames where they changed, found once per pair:
    each region's matches give one more candidate move (``moves``)."""

    def __init__(self, c0: np.ndarray, aligned: np.ndarray, changed: np.ndarray) -> None:
        near = cv2.dilate(changed, np.ones((7, 7), np.uint8))
        orb = cv2.ORB_create(  # type: ignore[attr-defined]
            nfeatures=800, scaleFactor=1.2, nlevels=4, edgeThreshold=15, patchSize=15,
            fastThreshold=10)
        self.found = [self._detect(orb, img, near) for img in (c0, aligned)]

    @staticmethod
    def _detect(orb: cv2.ORB, img: np.ndarray, mask: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray | None]:
        keys, desc = orb.detectAndCompute(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), mask)
        return np.asarray([k.pt for k in keys], np.float32).reshape(-1, 2), desc

    def moves(self, region: np.ndarray, forward: bool) -> list[np.ndarray]:
        """The scale, turn and shift (3×3) that most matches of the features in ``region``
        (frame 0's when ``forward``, else the aligned frame 1's) agree on, if enough do."""
        (pts, desc), (other, other_desc) = self.found if forward else self.found[::-1]
        if desc is None or other_desc is None or len(other) < 2:
            return []
        hgt, w = region.shape
        xs = np.clip(pts[:, 0].round().astype(int), 0, w - 1)
        ys = np.clip(pts[:, 1].round().astype(int), 0, hgt - 1)
        inside = np.flatnonzero(region[ys, xs] > 0)
        if len(inside) < _MIN_FEATURES:
            return []
        good = distinct_matches(desc[inside], other_desc)
        if len(good) < _MIN_FEATURES:
            return []
        src = pts[inside[[m.queryIdx for m in good]]]
        dst = other[[m.trainIdx for m in good]]
        fit, agree = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                 ransacReprojThreshold=2.0)
        if fit is None or agree is None or int(agree.sum()) < _MIN_FEATURES:
            return []
        return [np.vstack([fit.astype(np.float64), [0.0, 0.0, 1.0]])]


def match(c0: np.ndarray, aligned: np.ndarray, changed: np.ndarray,
          ends: tuple[np.ndarray, np.ndarray], seen: np.ndarray, known: np.ndarray,
          hint: np.ndarray | None = None, features: Features | None = None,
          places: list[np.ndarray] | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The subject that a region holds, as (frame-0 mask, aligned frame-1 mask, move):
    tried as where the subject was (frame 0; the region less what found subjects explain
    there: ``ends[0]``) and as where it went (aligned frame 1: ``ends[1]``), at the few best
    places the search found for each, and at the move its features' matches agree on
    (``features``); the hypothesis that explains the most error wins. None when none holds
    up. ``known``: what the subjects found so far explain, at either end. ``hint``: one
    more move to try from frame 0 (what the dense flow did there). ``places``: other
    changed regions where the subject may be at the other end (tried both ways: the shift
    between the centres, refined like the search's places)."""
    best: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    best_gain = 0.0
    for forward, region in zip((True, False), ends, strict=True):
        if np.count_nonzero(region) < least_area(*region.shape):
            continue
        src, dst = (c0, aligned) if forward else (aligned, c0)
        tried = _search(src, dst, region)
        if features is not None:
            # The template search compares the region with a rim of its surroundings, at a
            # quarter of the size: a textured subject that travelled over other texture, or
            # turned, or whose region also holds where it went (a move shorter than its
            # size), is often not at any of its peaks; its own features still match.
            tried += features.moves(region, forward)
        if forward and hint is not None:
            tried.append(hint)
        for other in places or ():
            tried.append(_between(region, other))
        confirmed = _each(partial(_confirm, src, dst, changed, region, seen=seen,
                                  known=known), tried)
        for found in confirmed:
            if found is None or found[3] <= best_gain:
                continue
            mask_src, mask_dst, move, best_gain = found
            if forward:
                best = mask_src, mask_dst, move
            else:
                best = mask_dst, mask_src, np.linalg.inv(move)
    return best


def _each(confirm: Callable[..., _Found | None], moves: list[np.ndarray]
          ) -> list[_Found | None]:
    """``[confirm(move=m) for m in moves]``, the second half in a thread meanwhile: the
    refinements are OpenCV calls that release the GIL, and the other core is idle during
    the pair's analysis. In order, so the choice is the same as one by one."""
    def run(part: list[np.ndarray]) -> list[_Found | None]:
        return [confirm(move=m) for m in part]

    if len(moves) < 2:
        return run(moves)
    half = (len(moves) + 1) // 2
    first, second = both(run, (moves[:half],), (moves[half:],))
    return first + second


def _between(region: np.ndarray, other: np.ndarray) -> np.ndarray:
    """The shift (3×3) from the centre of ``region``'s box to the centre of ``other``'s."""
    x, y, bw, bh = cv2.boundingRect(region)
    ox, oy, obw, obh = cv2.boundingRect(other)
    dx, dy = ox + obw / 2 - x - bw / 2, oy + obh / 2 - y - bh / 2
    return np.asarray([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def _search(src: np.ndarray, dst: np.ndarray, region: np.ndarray) -> list[np.ndarray]:
    """Where the content of ``region`` in ``src`` may have gone in ``dst``: translations
    (3×3) at the best few peaks of a masked colour template search at a quarter of the
    size. The change of size and the turn are left to the refinement (``_refine``).

    The template is the region with a rim of what surrounds it: a plain subject is known by
    its outline against its background, and a patch of plain surface (which looks alike
    anywhere on that surface) is refused for having no contrast at all.
    """
    _, _, rw, rh = cv2.boundingRect(region)
    rim = max(3, round(_RIM * min(rw, rh))) | 1
    region = cv2.dilate(region, np.ones((rim, rim), np.uint8))
    x, y, bw, bh = cv2.boundingRect(region)
    k = _COARSE
    if min(bw, bh) < 3 * k:
        k = max(1, min(bw, bh) // 3)
    small_dst = cv2.resize(dst, (dst.shape[1] // k, dst.shape[0] // k),
                           interpolation=cv2.INTER_AREA)
    tw, th = max(3, round(bw / k)), max(3, round(bh / k))
    if tw >= small_dst.shape[1] or th >= small_dst.shape[0]:
        return []
    tmpl = cv2.resize(src[y:y + bh, x:x + bw], (tw, th), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(region[y:y + bh, x:x + bw] * 255, (tw, th),
                      interpolation=cv2.INTER_AREA) > 127
    if mask.sum() < 6 or float(tmpl[mask].std(axis=0).max()) < _MIN_CONTRAST:
        return []  # a flat template matches anywhere
    mask3 = cv2.merge([mask.astype(np.float32)] * 3)
    score = cv2.matchTemplate(small_dst.astype(np.float32), tmpl.astype(np.float32),
                              cv2.TM_CCOEFF_NORMED, mask=mask3)
    score = _penalise_standing_still(score, x / k, y / k)
    moves = []
    for _ in range(_PEAKS):
        _, top, _, (bx, by) = cv2.minMaxLoc(score)
        if top < _MIN_SCORE:
            break
        moves.append(np.asarray([[1, 0, bx * k - x], [0, 1, by * k - y], [0, 0, 1]],
                                np.float64))
        # the next peak must be somewhere else
        score[max(0, by - th // 2):by + th // 2 + 1, max(0, bx - tw // 2):bx + tw // 2 + 1] = -1
    return moves


def _penalise_standing_still(score: np.ndarray, x: float, y: float) -> np.ndarray:
    """``score`` with the places at the region's own position ruled out: there the content
    changed (that is why it is a region), yet a masked correlation can still peak there."""
    score = np.nan_to_num(score, nan=-1.0, posinf=-1.0, neginf=-1.0)
    ox, oy = round(x), round(y)
    score[max(0, oy - 1):oy + 2, max(0, ox - 1):ox + 2] = -1.0
    return score


def warp_mask(mask: np.ndarray, move: np.ndarray) -> np.ndarray:
    hgt, w = mask.shape
    return cv2.warpAffine(mask, move[:2], (w, hgt), flags=cv2.INTER_NEAREST)


def _through(img: np.ndarray, move: np.ndarray, box: tuple[int, int, int, int],
             nearest: bool = False) -> np.ndarray:
    """``img`` read at ``move(p)`` for the pixels p of ``box`` (x, y, w, h): what ``img``
    shows where the move takes them. Only the box is computed."""
    x, y, bw, bh = box
    at = move @ np.asarray([[1, 0, x], [0, 1, y], [0, 0, 1]], np.float64)
    flags = (cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    border = cv2.BORDER_CONSTANT if nearest else cv2.BORDER_REPLICATE
    return cv2.warpAffine(img, at[:2], (bw, bh), flags=flags, borderMode=border)


def _pad_box(mask: np.ndarray, share: float) -> tuple[int, int, int, int]:
    """The bounding box of ``mask`` grown by ``share`` of its size each way, in the frame."""
    hgt, w = mask.shape
    x, y, bw, bh = cv2.boundingRect(mask)
    px, py = round(bw * share) + 2, round(bh * share) + 2
    x0, y0 = max(0, x - px), max(0, y - py)
    return x0, y0, min(w, x + bw + px) - x0, min(hgt, y + bh + py) - y0


def _explained(src: np.ndarray, dst: np.ndarray, changed: np.ndarray, move: np.ndarray,
               seen: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The subject's pixels in ``src`` and in ``dst`` under ``move``: changed pixels (around
    ``region``) whose colour the move carries to a changed pixel of the same colour, and
    the unchanged inside that they enclose where the move explains it too.

    Why the inside: a subject that moved less than its size overlaps itself, and where it
    is plain its overlap does not change (nor is it closed off in ``region`` when its
    outline meets a background of its colour); left out, that part stays on the plates
    and is shown twice in between, at both ends' places.
    """
    box = x, y, bw, bh = _pad_box(region, 0.25)
    inside = (slice(y, y + bh), slice(x, x + bw))
    changed = changed | region
    same = difference(src[inside], _through(dst, move, box)) <= CHANGED
    lands = _through(changed, move, box, nearest=True)
    usable = same & (seen[inside] > 0) & ~_like_flat_background(src, changed, region, box)
    explained = ((changed[inside] > 0) & (lands > 0) & usable).astype(np.uint8)
    core = _clean(explained)
    mask_src = np.zeros_like(changed)
    if not core.any():
        return mask_src, mask_src
    # the hull of every sizeable part: an outline is often cut where it meets its colour
    parts = cv2.morphologyEx(explained, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    hull = _hull(parts | core)
    enclosed = hull & usable.astype(np.uint8)
    enclosed = cv2.morphologyEx(enclosed, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask_src[inside] = _clean(core | enclosed)
    inner = np.zeros_like(changed)
    inner[inside] = enclosed & mask_src[inside]
    return mask_src, _moved(mask_src, move, changed | warp_mask(inner, move))


def _hull(mask: np.ndarray) -> np.ndarray:
    """The convex hull of ``mask``'s pixels, filled (uint8 0/1)."""
    points = cv2.findNonZero(mask)
    out = np.zeros_like(mask)
    cv2.fillConvexPoly(out, cv2.convexHull(points), 1)
    return out


def _moved(mask: np.ndarray, move: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """``mask`` carried by ``move``, where ``changed``, cleaned: worked in the box it lands
    in (and a margin for the cleaning), since the rest of the frame is empty."""
    hgt, w = mask.shape
    x, y, bw, bh = cv2.boundingRect(mask)
    out = np.zeros_like(mask)
    if bw == 0:
        return out
    corners = np.asarray([[x, y], [x + bw, y], [x, y + bh], [x + bw, y + bh]], np.float64)
    lands = corners @ move[:2, :2].T + move[:2, 2]
    x0, y0 = np.floor(lands.min(axis=0)).astype(int) - 4
    x1, y1 = np.ceil(lands.max(axis=0)).astype(int) + 5
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(hgt, y1)
    if x1 <= x0 or y1 <= y0:
        return out
    to_box = np.asarray([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ move
    part = cv2.warpAffine(mask, to_box[:2], (x1 - x0, y1 - y0), flags=cv2.INTER_NEAREST)
    out[y0:y1, x0:x1] = _clean(part & changed[y0:y1, x0:x1])
    return out


def _like_flat_background(src: np.ndarray, changed: np.ndarray, region: np.ndarray,
                          box: tuple[int, int, int, int]) -> np.ndarray:
    """Over ``box``, the pixels of ``src`` with the colour of a flat background around the
    region (all False where the background is not flat).

    Why: over a flat background (sky, a wall) the background moved along with a subject
    looks the same as the background standing still, so without this a subject's mask
    swallows the sky that another subject uncovers.
    """
    x, y, bw, bh = box
    inside = (slice(y, y + bh), slice(x, x + bw))
    reach = max(9, min(bw, bh) // 4) | 1
    # the ring lies within reach/2 of the region's box: worked there (+2 for the inner
    # dilation), not over the whole frame
    hgt, w = region.shape
    rx, ry, rw, rh = cv2.boundingRect(region)
    m = reach // 2 + 3
    near = (slice(max(0, ry - m), min(hgt, ry + rh + m)),
            slice(max(0, rx - m), min(w, rx + rw + m)))
    outer = cv2.dilate(region[near], np.ones((reach, reach), np.uint8))
    inner = cv2.dilate(region[near] | changed[near], np.ones((5, 5), np.uint8))
    ring = (outer > 0) & (inner == 0)  # past the soft edges of what changed
    none = np.zeros((bh, bw), bool)
    if np.count_nonzero(ring) < 20:
        return none
    around = src[near][ring].astype(np.float32)
    colour = column_medians(around)
    spread = 1.48 * column_medians(np.abs(around - colour))  # robust: noise's std
    if float(spread.max()) > _FLAT_SPREAD:
        return none
    near = np.abs(src[inside].astype(np.float32) - colour).max(axis=2)
    return near < CHANGED / 2


def _clean(mask: np.ndarray) -> np.ndarray:
    """The largest connected part of ``mask``, smoothed, holes filled."""
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros_like(mask)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return fill_holes((labels == biggest).astype(np.uint8))


def _refine(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, move: np.ndarray
            ) -> np.ndarray:
    """``move`` refined by ECC (affine) on the subject's pixels, in a box around them.

    ``dst`` is first brought onto the box by ``move``; ECC then finds the small correction
    that is left (it needs images of one size, and converges from near the answer).
    """
    x, y, bw, bh = cv2.boundingRect(mask)
    pad = max(8, max(bw, bh) // 4)
    hgt, w = mask.shape
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(w, x + bw + pad), min(hgt, y + bh + pad)
    shift = np.asarray([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)  # box -> src pixels
    start = move @ shift  # box pixels -> dst pixels
    g_src = cv2.cvtColor(src[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    back = cv2.warpAffine(cv2.cvtColor(dst, cv2.COLOR_RGB2GRAY), start[:2], (x1 - x0, y1 - y0),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
    candidates = [move]
    correction = np.eye(2, 3, dtype=np.float32)
    for motion in (cv2.MOTION_TRANSLATION, cv2.MOTION_AFFINE):
        try:  # translation first: the affine fit converges from there far more often
            _, correction = cv2.findTransformECC(g_src, back, correction.copy(), motion,
                                                 criteria, mask[y0:y1, x0:x1] * 255, 3)
        except cv2.error:  # no convergence: what was found so far stands
            break
        refined = start @ np.vstack([correction.astype(np.float64), [0, 0, 1]])
        candidates.append(_similar(refined @ np.linalg.inv(shift), mask))
    candidates = [c for c in candidates if _plausible(c)]
    return min(candidates, key=lambda c: colour_error(src, dst, mask, c), default=move)


def _similar(move: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The scale, turn and shift closest to the affine ``move``, keeping where it takes the
    subject's centre: a subject seen from a little further or turned is a similarity, and
    the shear an affine fit picks up on a partly seen outline tears it in between."""
    m = move[:2, :2]
    a, b = (m[0, 0] + m[1, 1]) / 2, (m[1, 0] - m[0, 1]) / 2
    x, y, bw, bh = cv2.boundingRect(mask)
    centre = np.asarray([x + bw / 2, y + bh / 2])
    lands = m @ centre + move[:2, 2]
    rot = np.asarray([[a, -b], [b, a]])
    out = np.eye(3)
    out[:2, :2], out[:2, 2] = rot, lands - rot @ centre
    return out


def _plausible(move: np.ndarray) -> bool:
    """A subject's change of size and turn stay within what the layers carry well."""
    m = move[:2, :2]
    det = float(np.linalg.det(m))
    if det <= 0:
        return False
    big, small = np.linalg.svd(m, compute_uv=False)
    turn = abs(np.arctan2(m[1, 0] - m[0, 1], m[0, 0] + m[1, 1]))
    return (1 / _MAX_SCALE < small and big < _MAX_SCALE and big < 1.25 * small
            and turn < _MAX_TURN)


def _distinct(src: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the pixels of ``mask`` show a thing: textured, or unlike what is around them.
    Texture is what is left once a gradient across them is taken out: a piece of a sky or a
    wall, whose light falls off across it, is not a thing."""
    x, y, bw, bh = _pad_box(mask, 0.2)
    inside = (slice(y, y + bh), slice(x, x + bw))
    own = mask[inside] > 0
    rim = (cv2.dilate(mask[inside], np.ones((7, 7), np.uint8)) > 0) & ~own
    pixels = src[inside].astype(np.float32)
    body, around = pixels[own], pixels[rim]
    ys, xs = np.nonzero(own)
    at = np.stack([np.ones(len(xs)), xs, ys], axis=1).astype(np.float32)
    plane, *_ = np.linalg.lstsq(at, body, rcond=None)
    if float((body - at @ plane).std(axis=0).max()) >= _MIN_CONTRAST or not len(around):
        return True
    step = np.abs(column_medians(body) - column_medians(around))
    return float(step.max()) >= 2 * _MIN_CONTRAST


def _coverage(region: np.ndarray, mask_src: np.ndarray, mask_dst: np.ndarray) -> float:
    """Share of the region's pixels next to the subject (within a fifth of its size) that
    it covers at one end or the other (both masks are on the same, camera-aligned grid)."""
    both_ends = mask_src | mask_dst
    _, _, bw, bh = cv2.boundingRect(mask_src)
    reach = max(3, min(bw, bh) // 5) | 1
    around = region & cv2.dilate(both_ends, np.ones((reach, reach), np.uint8))
    if not around.any():
        return 1.0  # what is around it is explained already (another subject)
    return np.count_nonzero(around & both_ends) / int(np.count_nonzero(around))


def colour_error(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, move: np.ndarray | None
           ) -> float:
    """Mean colour difference over ``mask`` between ``src`` and ``dst`` seen through ``move``
    (None: standing still)."""
    box = x, y, bw, bh = cv2.boundingRect(mask)
    if bw == 0 or bh == 0:
        return float("inf")  # nothing to compare: explains nothing
    inside = (slice(y, y + bh), slice(x, x + bw))
    back = dst[inside] if move is None else _through(dst, move, box)
    return mean_over(_largest_channel(cv2.absdiff(src[inside], back)), mask[inside])


def _confirm(src: np.ndarray, dst: np.ndarray, changed: np.ndarray, region: np.ndarray,
             move: np.ndarray, seen: np.ndarray, known: np.ndarray) -> _Found | None:
    """The subject's masks and refined move, if the move found for ``region`` holds up."""
    hgt, w = changed.shape
    least = least_area(hgt, w) / 2
    # The move is fitted first to the whole region (all of it is the subject when the
    # subject travelled farther than its size), then, in turns, to the pixels the move
    # explains: a change of size missed by the search leaves only the middle explained.
    fit_on = region
    for _ in range(_ROUNDS):
        move = _refine(src, dst, fit_on, move)
        mask_src, mask_dst = _explained(src, dst, changed, move, seen, region)
        if np.count_nonzero(mask_src) < least:
            return None
        if fit_on is not region and np.count_nonzero(mask_src) < 1.1 * np.count_nonzero(fit_on):
            break
        fit_on = mask_src
    area = np.count_nonzero(mask_src)
    if area < _SUBJECT_AREA_SHARE * hgt * w or area > MAX_AREA_SHARE * hgt * w:
        return None
    if np.count_nonzero(mask_src & region) < 0.3 * area:
        return None  # the subject found is not what this region holds
    if not _distinct(src, mask_src):
        return None  # a patch of plain surface: it looks the same wherever it is taken
    if _coverage(region & (1 - known), mask_src, mask_dst) < _COVERS:
        return None  # part of a thing that moves otherwise (an arm, a turning cup)
    moved = warp_mask(mask_src, move)
    iou = np.count_nonzero(moved & mask_dst) / max(1, int(np.count_nonzero(moved | mask_dst)))
    if iou < _MIN_SHAPE_IOU:
        return None
    err, still = colour_error(src, dst, mask_src, move), colour_error(src, dst, mask_src, None)
    if err > min(_EXPLAINS * still, MAX_ERROR):
        return None  # a look-alike, or a thing that does not move rigidly
    gain = (still - err) * area  # how much error the subject explains
    x, y, bw, bh = cv2.boundingRect(mask_src)
    centre = np.asarray([x + bw / 2, y + bh / 2, 1.0])
    travel = float(np.hypot(*(move @ centre - centre)[:2]))
    if travel < _MIN_MOVE_PX:
        return None  # dense flow follows this
    return mask_src, mask_dst, move, gain
