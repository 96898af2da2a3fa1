"""Camera motion for the ``flow`` engine: one homography for the whole frame.

A move of the camera alone (pan, zoom, roll, over a far scene) is explained completely by one
homography H from frame-0 pixels to frame-1 pixels. It is found from features (ORB, RANSAC),
then refined photometrically on the whole frame (ECC), since feature positions carry a pixel
or so of noise that shows as wobble and double edges in the blend. The frame at time t follows
the engine's convention: frame 0's corners move linearly to H(corners) (``camera_at``).
"""

from __future__ import annotations

import cv2
import numpy as np

_MIN_INLIERS = 40  # matches that must agree before the homography is believed
_MIN_INLIER_RATIO = 0.35
_ECC_SIDE = 480  # longer side of the images the photometric refinement runs on
_ECC_ITERS = 60
_MAX_ANISOTROPY = 1.5  # largest ratio of the local stretches of a camera move
_MIN_AWAY = 0.1  # share of the frame away from the camera's matches worth checking
# the camera is refused where it leaves more error than this times standing still's, plus
# a grey level's quarter (noise): flat backgrounds dragged along leave several times more,
# real camera moves less (``benchmarks/README.md``)
_STILL_RATIO, _STILL_NOISE = 1.5, 0.25


def corners(w: int, hgt: int) -> np.ndarray:
    return np.asarray([[0, 0], [w, 0], [w, hgt], [0, hgt]], np.float32)


def estimate_camera(g0: np.ndarray, g1: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """Homography mapping frame-0 pixels to frame-1 pixels, or None when it is not trustworthy.

    Why: dense flow loses large global moves (pans, zooms); a robust global model recovers
    them, and the residual flow is then small. Only trusted with many, mostly agreeing matches.
    This is the features' estimate; ``find_camera`` refines and checks it.
    """
    found = _estimate(g0, g1, seed)
    return None if found is None else found[0]


def find_camera(g0: np.ndarray, g1: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """The camera of the pair, as the engines take it: the features' estimate refined on
    the whole frame (ECC), when it stretches the frame evenly (``locally_plausible``) and
    explains what lies away from its matches no worse than standing still (``_elsewhere``)."""
    found = _estimate(g0, g1, seed)
    if found is None:
        return None
    h = refine_camera(g0, g1, found[0])
    if not locally_plausible(h, g0.shape[1], g0.shape[0]):
        return None
    return h if _elsewhere(g0, g1, h, *found[1:]) else None


def _elsewhere(g0: np.ndarray, g1: np.ndarray, h: np.ndarray, src: np.ndarray,
               dst: np.ndarray, tol: float) -> bool:
    """Whether ``h`` explains the frame away from the matches that agree with it nearly as
    well as standing still does, or better (mean grey difference there).

    A camera move moves everything. Over a flat background (a sky, a studio wall) the only
    features are on a subject, and all of them agree on its move: taken for the camera,
    that move drags the background along (a fresh draw of the moving-subject scenes lost up
    to 12 dB on flat backgrounds that way) and the subject is not found as one. There the
    background away from the subject stands still, which a real pan over a plain area does
    not contradict (both explain a plain area alike). On the development sets it also
    refuses the "camera" of six clips shot from a tripod, fitted to a thing moving in them.
    """
    hgt, w = g0.shape
    lands = cv2.perspectiveTransform(src.reshape(-1, 1, 2), h).reshape(-1, 2)
    agree = np.hypot(*(lands - dst).T) < tol
    if agree.sum() < 3:
        return False
    points = np.vstack([src[agree], dst[agree]]).astype(np.int32)
    near = np.zeros((hgt, w), np.uint8)
    cv2.fillConvexPoly(near, cv2.convexHull(points), 1)
    reach = max(3, round(max(hgt, w) / 40)) | 1
    away = cv2.dilate(near, np.ones((reach, reach), np.uint8)) == 0
    inv = np.linalg.inv(h)
    back = cv2.warpPerspective(g1, inv, (w, hgt), flags=cv2.INTER_LINEAR)
    away &= seen_from(inv, w, hgt) > 0
    if away.mean() < _MIN_AWAY:
        return True  # the matches span the frame
    moved = float(cv2.absdiff(g0, back)[away].mean())
    still = float(cv2.absdiff(g0, g1)[away].mean())
    return moved <= _STILL_RATIO * still + _STILL_NOISE


def _estimate(g0: np.ndarray, g1: np.ndarray, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """(homography, the matched points in each frame, the inlier tolerance), or None."""
    orb = cv2.ORB_create(nfeatures=1500, fastThreshold=12)  # type: ignore[attr-defined]
    k0, d0 = orb.detectAndCompute(g0, None)
    k1, d1 = orb.detectAndCompute(g1, None)
    if d0 is None or d1 is None or len(k0) < _MIN_INLIERS or len(k1) < _MIN_INLIERS:
        return None
    good = distinct_matches(d0, d1)
    if len(good) < _MIN_INLIERS:
        return None
    src = np.asarray([k0[m.queryIdx].pt for m in good], np.float32)
    dst = np.asarray([k1[m.trainIdx].pt for m in good], np.float32)
    cv2.setRNGSeed(seed % 2**31)  # OpenCV takes a C int; request seeds go to 2**32-1
    tol = max(2.0, 0.004 * max(g0.shape))
    h, mask = cv2.findHomography(src, dst, cv2.RANSAC, tol, maxIters=2000, confidence=0.995)
    if h is None or mask is None:
        return None
    inliers = int(mask.sum())
    if inliers < _MIN_INLIERS or inliers < _MIN_INLIER_RATIO * len(good):
        return None
    if not plausible(h, g0.shape[1], g0.shape[0]):
        return None
    return h, src, dst, tol


def distinct_matches(d0: np.ndarray, d1: np.ndarray) -> list[cv2.DMatch]:
    """Each ORB descriptor of ``d0``'s nearest in ``d1``, where it is clearly nearer than the
    second nearest (Lowe's ratio test: a look-alike elsewhere makes a match a guess)."""
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(d0, d1, k=2)
    return [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]


def seen_from(inv: np.ndarray, w: int, hgt: int, erode: bool = True) -> np.ndarray:
    """uint8 1 where frame 1, brought back onto frame 0 by ``inv`` (H⁻¹), saw the pixel, else
    0; eroded by two pixels (``erode``), since its border samples are smeared."""
    seen = cv2.warpPerspective(np.ones((hgt, w), np.uint8), inv, (w, hgt),
                               flags=cv2.INTER_NEAREST)
    return cv2.erode(seen, np.ones((5, 5), np.uint8)) if erode else seen


def plausible(h: np.ndarray, w: int, hgt: int) -> bool:
    """Reject homographies that fold, flip or blow the frame up: not a camera move."""
    moved = cv2.perspectiveTransform(corners(w, hgt).reshape(-1, 1, 2), h).reshape(-1, 2)
    area = cv2.contourArea(moved)
    if not cv2.isContourConvex(moved.astype(np.float32)) or area <= 0:
        return False
    return 0.4 < area / (w * hgt) < 2.5


def locally_plausible(h: np.ndarray, w: int, hgt: int) -> bool:
    """Whether ``h`` stretches the image about equally in every direction everywhere.

    Checked at the centre and the corners, on the final (refined) homography: a pan, zoom or
    roll does so, while a fit to the features of one moving object can squash or mirror the
    frame locally although its outline stays convex (one 8-step window: -1.7 dB with such
    a "camera"). The features' first estimate is often skewed in this way before ECC
    straightens it, so it is not held to this.
    """
    for x, y in (*corners(w, hgt), (w / 2, hgt / 2)):
        jac = _jacobian(h, x, y)
        big, small = np.linalg.svd(jac, compute_uv=False)
        if not 0.4 < float(np.linalg.det(jac)) < 2.5 or big > _MAX_ANISOTROPY * small:
            return False
    return True


def _jacobian(h: np.ndarray, x: float, y: float) -> np.ndarray:
    """2×2 derivative of the homography ``h`` at pixel (x, y)."""
    den = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    num = h[:2, :2] @ np.asarray([x, y]) + h[:2, 2]
    return (h[:2, :2] * den - np.outer(num, h[2, :2])) / den**2


def refine_camera(g0: np.ndarray, g1: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``h`` refined so that frame 1 warped by it matches frame 0 best (ECC on the whole frame).

    Runs on images of at most ``_ECC_SIDE`` pixels; if ECC fails to converge, or the result
    explains the pair worse than the start, the feature estimate is kept.
    """
    hgt, w = g0.shape
    s = min(1.0, _ECC_SIDE / max(w, hgt))
    size = (max(16, round(w * s)), max(16, round(hgt * s)))
    down = np.diag([size[0] / w, size[1] / hgt, 1.0])
    a, b = (cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in (g0, g1))
    start = (down @ h @ np.linalg.inv(down)).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, _ECC_ITERS, 1e-5)
    try:
        _, found = cv2.findTransformECC(a, b, start.copy(), cv2.MOTION_HOMOGRAPHY, criteria,
                                        None, 3)
    except cv2.error:  # no convergence: the features' estimate stands
        return h
    refined = np.linalg.inv(down) @ found.astype(np.float64) @ down
    if not plausible(refined, w, hgt) or residual(g0, g1, refined) > residual(g0, g1, h):
        return h
    return refined / refined[2, 2]


def residual(g0: np.ndarray, g1: np.ndarray, h: np.ndarray) -> float:
    """Mean absolute grey difference between frame 0 and frame 1 brought back by ``h``,
    over the pixels frame 1 saw."""
    hgt, w = g0.shape
    inv = np.linalg.inv(h)
    back = cv2.warpPerspective(g1, inv, (w, hgt), flags=cv2.INTER_LINEAR)
    inside = seen_from(inv, w, hgt, erode=False) > 0
    if not inside.any():
        return float("inf")
    return float(np.mean(cv2.absdiff(g0, back)[inside]))


def camera_at(h: np.ndarray, t: float, w: int, hgt: int) -> np.ndarray:
    """Homography from frame 0 to time t: frame corners moved linearly along the path."""
    c = corners(w, hgt)
    c1 = cv2.perspectiveTransform(c.reshape(-1, 1, 2), h).reshape(-1, 2)
    return cv2.getPerspectiveTransform(c, (c + t * (c1 - c)).astype(np.float32))


def unexplained(g0: np.ndarray, aligned1: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Per pixel, how much the camera alone fails to explain it (0: fully, 1: not at all).

    ``aligned1`` is frame 1 brought back to frame 0 by the camera (``inv`` = H⁻¹). Differences
    below a few grey levels are compression noise; where frame 1 did not see the pixel there
    is nothing to compare, and the camera stands. The unexplained areas are dilated so that
    the edges of a moving object keep its own motion.
    """
    hgt, w = g0.shape
    err = cv2.GaussianBlur(cv2.absdiff(g0, aligned1), (0, 0), 1.5).astype(np.float32)
    miss = np.clip((err - 4.0) / 8.0, 0.0, 1.0) * seen_from(inv, w, hgt)
    reach = max(3, round(max(g0.shape) / 80)) | 1
    return cv2.dilate(miss, np.ones((reach, reach), np.uint8))
