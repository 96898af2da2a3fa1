"""Large motion for the flow engine: put back the moves that dense optical flow lost.

DIS follows an object only while it moves less than about its own size; beyond that the
object is smeared into the background and later cross-dissolved. This module finds the
regions the dense flow fails to explain and searches for them as blocks in the other frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from segue.engines.flow.warp import grid, median, sample

_BLOB_ERROR = 24  # grey levels of warping error that mark a region the dense flow missed
_MAX_BLOBS = 8
# A block move replaces the dense flow only when it is far larger than what the flow already
# does there and explains the frame far better: looser rules (5 px, 0.7·error − 2) gave
# Middlebury +0.4 dB but cost real footage 0.3 dB (blur and compression fool the matcher).
_LARGER_BY = 20.0  # px at the working size
_RATIO, _MARGIN = 0.5, 4.0
# A block move is believed only if searching back from where the block landed finds the
# start again (within this many px): on real footage, repeated texture, blur and
# compression make one-way matches land on look-alikes (triplets +0.15 dB, camera set
# +0.3 dB with the check; Middlebury unchanged).
_ROUND_TRIP = 2.0


def _missed_regions(err: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) around the larger connected regions of high warping error."""
    hgt, w = err.shape
    mask = (err > _BLOB_ERROR).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    least = max(12, hgt * w // 4000)
    boxes = sorted((s for s in stats[1:] if s[4] >= least), key=lambda s: -s[4])
    return [(int(s[0]), int(s[1]), int(s[2]), int(s[3])) for s in boxes[:_MAX_BLOBS]]


def _find_move(ga: np.ndarray, gb: np.ndarray, box: tuple[int, int, int, int],
               reach: int) -> np.ndarray | None:
    """Where the content of ``box`` in ``ga`` went in ``gb`` (a translation), by template
    matching over ``reach`` pixels; None when no place matches well."""
    x, y, bw, bh = box
    hgt, w = ga.shape
    x0, y0 = max(0, x - reach), max(0, y - reach)
    x1, y1 = min(w, x + bw + reach), min(hgt, y + bh + reach)
    score = cv2.matchTemplate(gb[y0:y1, x0:x1], ga[y:y + bh, x:x + bw], cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(score)
    if best < 0.6:
        return None
    return np.asarray([x0 + bx - x, y0 + by - y], np.float32)


def _find_move_both_ways(ga: np.ndarray, gb: np.ndarray, box: tuple[int, int, int, int],
                         reach: int) -> np.ndarray | None:
    """``_find_move``, kept only if the block found in ``gb`` leads back to ``box`` in ``ga``."""
    move = _find_move(ga, gb, box, reach)
    if move is None:
        return None
    x, y, bw, bh = box
    hgt, w = ga.shape
    nx, ny = x + round(float(move[0])), y + round(float(move[1]))
    if nx < 0 or ny < 0 or nx + bw > w or ny + bh > hgt:
        return None
    back = _find_move(gb, ga, (nx, ny, bw, bh), reach)
    if back is None or float(np.hypot(*(move + back))) > _ROUND_TRIP:
        return None
    return move


def recover_large_moves(ga: np.ndarray, gb: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``flow`` (ga -> gb) with the moves that dense flow lost put back, where they fit.

    Why: DIS follows an object only while it moves less than about its own size; beyond
    that the object is smeared into the background and later cross-dissolved. The regions
    where warping ``gb`` by ``flow`` does not reproduce ``ga`` are searched for in ``gb`` as
    blocks (template matching, translations, confirmed by searching back); each translation
    found is a candidate for the pixels around its region and replaces the dense flow only
    where it explains ``ga`` clearly better (local photometric error).
    """
    hgt, w = ga.shape
    xy = grid(w, hgt)
    warped = sample(gb, xy + flow)
    err = cv2.GaussianBlur(cv2.absdiff(ga, warped), (0, 0), 1.5)
    boxes = _missed_regions(err)
    if not boxes:
        return flow
    reach = max(32, max(w, hgt) // 3)
    best = cv2.boxFilter(err.astype(np.float32), -1, (9, 9))
    out = flow.copy()
    for box in boxes:
        move = _find_move_both_ways(ga, gb, box, reach)
        if move is None:
            continue
        x, y, bw, bh = box
        pad = max(bw, bh) // 2 + 4
        roi = (slice(max(0, y - pad), y + bh + pad), slice(max(0, x - pad), x + bw + pad))
        shifted = sample(gb, xy[roi] + move)
        cand = cv2.boxFilter(cv2.absdiff(ga[roi], shifted).astype(np.float32), -1, (9, 9))
        known = float(median(np.hypot(flow[roi][..., 0], flow[roi][..., 1])))
        if float(np.hypot(*move)) < known + _LARGER_BY:
            continue  # the dense flow already moves this region about that far
        better = cand < _RATIO * best[roi] - _MARGIN
        out[roi][better] = move
        best[roi] = np.where(better, cand, best[roi])
    return out
