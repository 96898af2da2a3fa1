"""Subjects for the ``flow`` engine: what moves on its own, found and matched across the pair.

After the camera model, whatever the camera does not explain is either noise, a change in
place (light, deformation), or a *subject*: a thing that travelled. Dense flow follows a
subject only while it moves less than about its own size, and it has nothing to hold on to
over a flat background (sky, a studio wall), so a far-travelling subject ends up shown twice
(a dissolve) or torn. Here such subjects are found as regions and matched as wholes:

1. Frame 1 is brought back onto frame 0 by the camera; the pixels that still differ are
   grouped into connected regions (holes filled: a plain subject that overlaps itself only
   differs along its outline). Only regions where the dense flow also fails to explain the
   frames are looked at: on real footage the flow follows nearly everything that moves,
   and better than a rigid layer does (deforming things, blur).
2. Each region, with a rim of its surroundings, is searched for in the other frame as a
   masked colour template at a quarter of the size, both ways (the region may be where the
   subject was or where it went), at its few best places; and the ORB features inside it
   are matched with those of the other frame's changed pixels, the scale, turn and shift
   most of them agree on (RANSAC) being one more place, and so is each other changed
   region of about its size (a subject that travelled farther than its size leaves one at
   each end: the shift between their centres, refined). The template knows a plain subject
   by its outline; the features find a textured one that travelled over other texture,
   turned, or whose region also holds where it went (a move shorter than its size), where
   the template's rim of surroundings misleads the search; the other regions find a small
   or blurred one that neither finds (too few features, a template too coarse).
3. With a move, the subject's pixels in each frame are those of the changed region that
   the move explains (the same colour where the move takes them, inside the changed region
   there too; over a flat background, not the background's colour), with the unchanged
   inside they enclose where the subject overlaps itself, and the move is refined
   photometrically on them (ECC: shift, then affine, kept as the nearest scale and turn),
   in turns, since each improves the other.
4. A subject is believed only when its move explains its pixels far better than standing
   still does and well in absolute terms, it is a thing (textured, or unlike what is
   around it), its shape is about the same in both frames, it explains the changed pixels
   around it, it travelled farther than a few pixels, and carrying it beats the flow: far
   lower error than the flow's, or a rigid move that leaves no doubt, or a flow that does
   not move it as one piece or that leaves much of where it was uncovered (the dense path
   has no background there and shows the subject twice). The hypothesis that explains the
   most error wins; what a subject explains is peeled off the regions, so that subjects
   passing near each other (or crossing) are found one after the other.
5. A subject that another hides in part at one end is matched by the part seen at both;
   its changed pixels next to that part which its move takes under the other subject are
   added to it (``_behind``), so it is carried whole.

Everything here runs at the working size; the matching of one region is ``matching``, and
``layers`` carries the subjects at the output size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from segue.engines.flow.camera import seen_from
from segue.engines.flow.matching import (
    CHANGED,
    MAX_AREA_SHARE,
    MAX_ERROR,
    Features,
    colour_error,
    column_medians,
    difference,
    fill_holes,
    least_area,
    match,
    mean_over,
    warp_mask,
)
from segue.engines.flow.warp import grid, median, sample

_MAX_CHANGED_SHARE = 0.35  # above this the camera explains too little: leave it to the flow
_MAX_REGIONS = 8
_MISSED = 6.0  # mean colour error of the dense flow over a region worth looking at
_BEATS_FLOW = 0.6  # a layer must leave at most this share of the flow's error
_STRAY = 1.0  # px (median) by which the flow over a subject may stray from its move
_PRECISE = 5.0  # mean colour error of a rigid move that leaves no doubt
_PLACES_AREA = 2.5  # most a subject's two places' changed areas differ by (either way)
_UNCOVERED = 0.2  # share of a subject's area that it uncovers, beyond which the flow ghosts


@dataclass(frozen=True)
class Subject:
    """One subject at the working size.

    ``move`` maps frame-0 pixels of the subject to where they are in frame 1 *brought back by
    the camera* (3×3, affine); ``mask0`` is the subject in frame 0 and ``mask1`` in that
    camera-aligned frame 1, both uint8 0/1 over the whole working frame.
    """

    mask0: np.ndarray
    mask1: np.ndarray
    move: np.ndarray
    box: tuple[int, int, int, int]  # x, y, w, h of mask0


def find_subjects(c0: np.ndarray, c1: np.ndarray, camera: np.ndarray | None,
                  f01: np.ndarray, f10: np.ndarray) -> list[Subject]:
    """The subjects of the working-size RGB pair ``c0``, ``c1`` that the dense flows
    ``f01``, ``f10`` (total, at that size) fail to carry, largest first. ``camera``: the
    frame-0 -> frame-1 homography at that size, or None for a still camera."""
    hgt, w = c0.shape[:2]
    aligned, seen = _aligned(c1, camera)
    changed = _changed(c0, aligned, seen)
    if changed is None:
        return []
    misses = _flow_misses(c0, c1, f01, f10, camera)
    # Only where the flow fails: on real footage it follows nearly everything that moves,
    # and better than a rigid layer does (non-rigid motion, blur).
    missed = cv2.max(*misses)  # either end
    regions = [r for r in _regions(changed) if mean_over(missed, r) > _MISSED]
    everywhere = list(regions)
    features = Features(c0, aligned, changed) if regions else None
    found: list[Subject] = []
    used = [np.zeros((hgt, w), np.uint8), np.zeros((hgt, w), np.uint8)]  # per end
    kernel = np.ones((3, 3), np.uint8)
    while regions and len(found) < _MAX_REGIONS:
        # Regions are peeled: what a subject found explains at one end is taken out of the
        # regions searched from that end, since subjects that pass near each other (or
        # cross) merge into one region.
        region = regions.pop(0)
        ends = (fill_holes(region & (1 - used[0])), fill_holes(region & (1 - used[1])))
        if max(np.count_nonzero(e) for e in ends) < least_area(hgt, w):
            continue
        known = used[0] | used[1]
        matched = match(c0, aligned, changed, ends, seen, known,
                        _flow_hint(ends[0], f01, camera), features,
                        _places(everywhere, region, ends, known))
        subject = None if matched is None else _subject(*matched)
        if (subject is None or any(_overlap(subject.mask0, s.mask0) > 0.3 for s in found)
                or not _beats_flow(c0, aligned, subject, misses, f01, camera)):
            continue
        found.append(subject)
        used[0] |= cv2.dilate(subject.mask0, kernel)
        used[1] |= cv2.dilate(subject.mask1, kernel)
        regions.insert(0, region)  # what is left of it may hold another subject
    return sorted(_behind(found, changed), key=lambda s: -int(s.mask0.sum()))


def _subject(mask0: np.ndarray, mask1: np.ndarray, move: np.ndarray) -> Subject:
    x, y, bw, bh = cv2.boundingRect(mask0)
    return Subject(mask0, mask1, move, (x, y, bw, bh))


def _behind(found: list[Subject], changed: np.ndarray) -> list[Subject]:
    """The subjects with what another subject hides of them at one end added to their mask
    at the other end.

    A subject that passes behind another is seen whole at one end and in part at the other.
    Its move explains only the part seen at both (the rest lands on the other subject's
    colours), so that part alone would be carried and the rest left on the plate, where
    the flow smears it. The changed pixels next to it that its move takes under another
    subject are its own too."""
    if len(found) < 2:
        return found
    out = []
    for s in found:
        others = [o for o in found if o is not s]
        cover0 = np.maximum.reduce([o.mask0 for o in others])
        cover1 = np.maximum.reduce([o.mask1 for o in others])
        # changed because this subject is there, not because another is at either end
        free = changed & (1 - (cover0 | cover1))
        mask0 = _grown(s.mask0, free & warp_mask(cover1, np.linalg.inv(s.move)))
        mask1 = _grown(s.mask1, free & warp_mask(cover0, s.move))
        if mask0 is not s.mask0 or mask1 is not s.mask1:
            s = _subject(mask0, mask1, s.move)
        out.append(s)
    return out


def _grown(mask: np.ndarray, more: np.ndarray) -> np.ndarray:
    """``mask`` with the parts of ``more`` that touch it (``mask`` itself where none do)."""
    more = more & (1 - mask)
    n, labels = cv2.connectedComponents(more, connectivity=8)
    if n <= 1:
        return mask
    touching = np.unique(labels[(cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0) & (more > 0)])
    touching = touching[touching > 0]
    if not len(touching):
        return mask
    return mask | np.isin(labels, touching).astype(np.uint8)


def _flow_misses(c0: np.ndarray, c1: np.ndarray, f01: np.ndarray, f10: np.ndarray,
                 camera: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """How far the dense flows are from explaining each frame (colour difference after
    warping), both in frame-0 pixels: frame 0's, and frame 1's brought back by the camera."""
    hgt, w = c0.shape[:2]
    xy = grid(w, hgt)
    miss0 = difference(c0, sample(c1, xy + f01))
    miss1 = difference(c1, sample(c0, xy + f10))
    if camera is not None:
        miss1 = cv2.warpPerspective(miss1, np.linalg.inv(camera), (w, hgt),
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return miss0, miss1


def _flow_hint(region: np.ndarray, f01: np.ndarray, camera: np.ndarray | None
               ) -> np.ndarray | None:
    """The move the dense flow gives ``region`` (median over its pixels, camera taken out),
    as one more candidate: where a subject moved less than its size, its start and end make
    one region that the template search can miss, while the flow has roughly followed it."""
    ys, xs = np.nonzero(region)
    if not len(xs):
        return None
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    lands = (pts + f01[ys, xs]).reshape(-1, 1, 2)
    if camera is not None:
        lands = cv2.perspectiveTransform(lands, np.linalg.inv(camera))
    shift = column_medians(lands.reshape(-1, 2) - pts)
    return np.asarray([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1]], np.float64)


def _beats_flow(c0: np.ndarray, aligned: np.ndarray, subject: Subject,
                misses: tuple[np.ndarray, np.ndarray], f01: np.ndarray,
                camera: np.ndarray | None) -> bool:
    """Whether carrying ``subject`` as a layer is clearly better than leaving it to the
    dense flow: the layer explains its pixels far better than the flow does, or the flow
    explains the end frames but does not move the subject as one piece (its vectors over
    the subject stray from the subject's move: pieces recovered block by block, the rest
    smeared), which tears it in between, or leaves much of where it was uncovered (see
    ``_uncovers``)."""
    flow = (mean_over(misses[0], subject.mask0) + mean_over(misses[1], subject.mask1)) / 2
    # the better of the two ends' views: a subject that changed size is enlarged (blurred)
    # by the resampling when seen from the end where it is smaller, an error that the
    # layer, drawn from both ends, does not make
    layer = min(colour_error(c0, aligned, subject.mask0, subject.move),
                colour_error(aligned, c0, subject.mask1, np.linalg.inv(subject.move)))
    if layer < _BEATS_FLOW * flow or layer < _PRECISE:
        return True
    ys, xs = np.nonzero(subject.mask0)
    pts = np.stack([xs, ys], axis=1).astype(np.float64).reshape(-1, 1, 2)
    total = subject.move if camera is None else camera @ subject.move
    wanted = cv2.perspectiveTransform(pts, total).reshape(-1, 2) - pts.reshape(-1, 2)
    stray = np.hypot(*(f01[ys, xs] - wanted).T)
    return layer < MAX_ERROR / 2 and (float(median(stray)) > _STRAY or _uncovers(subject))


def _uncovers(subject: Subject) -> bool:
    """Whether the subject leaves a good part of where it was (or goes to) uncovered.

    Even a flow that carries the subject well shows it twice there in between: the dense
    path has no background for those pixels at the end where the subject covers them, and
    blends the subject in; the layer's plates hold that background (from the other end).
    """
    area = max(1, int(np.count_nonzero(subject.mask0)))
    return bool(np.count_nonzero(subject.mask0 & (1 - subject.mask1)) > _UNCOVERED * area)


def _aligned(c1: np.ndarray, camera: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Frame 1 brought back onto frame 0 by the camera, and where it saw (eroded)."""
    hgt, w = c1.shape[:2]
    if camera is None:
        return c1, np.ones((hgt, w), np.uint8)
    inv = np.linalg.inv(camera)
    aligned = cv2.warpPerspective(c1, inv, (w, hgt), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    return aligned, seen_from(inv, w, hgt)


def _changed(c0: np.ndarray, aligned: np.ndarray, seen: np.ndarray) -> np.ndarray | None:
    """uint8 mask of the pixels the camera does not explain; None where that is most of
    the frame (then there is no background to carry subjects over)."""
    changed = ((difference(c0, aligned) > CHANGED) & (seen > 0)).astype(np.uint8)
    if changed.mean() > _MAX_CHANGED_SHARE:
        return None
    changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return cv2.morphologyEx(changed, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))


def _regions(changed: np.ndarray) -> list[np.ndarray]:
    """The larger connected changed regions, holes filled, largest first."""
    hgt, w = changed.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
    least, most = least_area(hgt, w), 2 * MAX_AREA_SHARE * hgt * w
    keep = [i for i in range(1, n) if least <= stats[i, cv2.CC_STAT_AREA] <= most]
    keep = sorted(keep, key=lambda i: -stats[i, cv2.CC_STAT_AREA])[:_MAX_REGIONS]
    return [fill_holes((labels == i).astype(np.uint8)) for i in keep]


def _places(regions: list[np.ndarray], region: np.ndarray,
            ends: tuple[np.ndarray, np.ndarray], known: np.ndarray) -> list[np.ndarray]:
    """The other regions where the subject of ``region`` (what is left of it: ``ends``) may
    be at the other end: those that found subjects do not explain yet, and whose area is
    within ``_PLACES_AREA`` of its own (the subject's change of size, and what of it matches
    the background at each place and so is not changed there)."""
    area = max(np.count_nonzero(e) for e in ends)
    out = []
    for other in regions:
        free = np.count_nonzero(other & (1 - known))
        if other is not region and 2 * free > np.count_nonzero(other) \
                and 1 / _PLACES_AREA < free / area < _PLACES_AREA:
            out.append(other & (1 - known))
    return out


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the smaller mask that the other covers."""
    inter = float(np.count_nonzero(a & b))
    return inter / max(1.0, float(min(np.count_nonzero(a), np.count_nonzero(b))))
