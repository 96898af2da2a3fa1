"""Subjects that travel: found, matched, carried as one layer, and faded when they leave."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segue.engines.flow import interpolate
from segue.engines.flow.camera import find_camera
from segue.engines.flow.layers import _plate, _redouble
from segue.engines.flow.matching import _distinct, colour_error
from segue.engines.flow.subjects import _beats_flow, _subject, find_subjects
from segue.engines.flow.warp import double, grid

W, H = 480, 272


def textured(rng: np.random.Generator, h: int, w: int, tint: tuple[int, int, int]
             ) -> np.ndarray:
    """Smooth colour noise with a tint: a photo-like surface the eye and the flow can follow."""
    img = np.zeros((h, w, 3), np.float32)
    for cell, amp in ((16, 70.0), (4, 45.0)):
        small = rng.random((max(2, h // cell), max(2, w // cell), 3)).astype(np.float32)
        img += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(img + np.float32(tint), 0, 255).astype(np.uint8)


def flat(h: int = H, w: int = W) -> np.ndarray:
    """A sky: a smooth gradient with faint grain, nothing for dense flow to hold on to."""
    rng = np.random.default_rng(5)
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = np.float32([90, 140, 200]) + ramp * np.float32([40, 30, 20])
    img = np.broadcast_to(img, (h, w, 3)) + rng.normal(0, 1.0, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def sprite(seed: int = 11, size: tuple[int, int] = (70, 48)) -> tuple[np.ndarray, np.ndarray]:
    """A textured subject with a soft elliptical outline."""
    w, h = size
    picture = textured(np.random.default_rng(seed), h, w, (120, 40, 20))
    mask = np.zeros((4 * h, 4 * w), np.uint8)
    cv2.ellipse(mask, (2 * w, 2 * h), (2 * w - 4, 2 * h - 4), 0, 0, 360, 255, -1)
    alpha = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return picture, alpha


def place(background: np.ndarray, subject: tuple[np.ndarray, np.ndarray],
          centre: tuple[float, float], scale: float = 1.0, turn: float = 0.0) -> np.ndarray:
    """``background`` with the subject drawn, centred at ``centre``, scaled by ``scale`` and
    turned by ``turn`` degrees."""
    picture, alpha = subject
    h, w = alpha.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), turn, scale)
    m[:, 2] += [centre[0] - w / 2, centre[1] - h / 2]
    size = background.shape[1::-1]
    p = cv2.warpAffine(picture, m, size, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    a = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR)[..., None]
    out = background.astype(np.float32) * (1 - a) + p * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def where_is(frame: np.ndarray, background: np.ndarray) -> tuple[float, float, int]:
    """Centre and size (pixels) of what differs from the background in ``frame``."""
    diff = cv2.absdiff(frame, background).max(axis=2) > 40
    ys, xs = np.nonzero(diff)
    return float(xs.mean()), float(ys.mean()), int(diff.sum())


def backgrounds() -> dict[str, np.ndarray]:
    return {"flat": flat(), "textured": textured(np.random.default_rng(3), H, W, (30, 60, 30))}


@pytest.mark.parametrize("kind", ["flat", "textured"])
def test_a_far_travelling_subject_is_drawn_once_halfway(kind: str) -> None:
    bg, subject = backgrounds()[kind], sprite()
    start, end = (90.0, 190.0), (390.0, 80.0)  # 318 px: more than four times its size
    first, last = place(bg, subject, start), place(bg, subject, end)
    mid = interpolate(first, last, [0.5])[0]
    x, y, area = where_is(mid, bg)
    assert abs(x - 240) < 4 and abs(y - 135) < 4  # at its halfway position
    assert 0.8 < area / where_is(first, bg)[2] < 1.2  # once, whole: not two halves
    for x0, y0 in (start, end):  # no ghost where it was or will be
        patch = (slice(int(y0) - 20, int(y0) + 20), slice(int(x0) - 30, int(x0) + 30))
        assert cv2.absdiff(mid[patch], bg[patch]).mean() < 4, (x0, y0)
    want = place(bg, subject, (240.0, 135.0))
    body = (slice(120, 150), slice(215, 265))
    assert cv2.absdiff(mid[body], want[body]).mean() < 6  # its own picture, not a smear


def test_without_layers_the_same_subject_is_shown_twice() -> None:
    """The comparison the layers are for: dense flow alone cross-dissolves this subject."""
    bg, subject = flat(), sprite()
    first, last = place(bg, subject, (90, 190)), place(bg, subject, (390, 80))
    mid = interpolate(first, last, [0.5], subjects=False)[0]
    ghost = (slice(170, 210), slice(60, 120))
    assert cv2.absdiff(mid[ghost], bg[ghost]).mean() > 10


def test_a_subject_that_changes_size_is_matched_with_its_scale() -> None:
    bg, subject = textured(np.random.default_rng(4), H, W, (40, 40, 60)), sprite(seed=12)
    first, last = place(bg, subject, (100, 100)), place(bg, subject, (360, 170), scale=1.15)
    c0, c1 = (cv2.resize(f, (W, H), interpolation=cv2.INTER_AREA) for f in (first, last))
    xy = grid(W, H)
    still = np.zeros_like(xy)
    found = find_subjects(c0, c1, None, still, still)
    assert len(found) == 1
    move = found[0].move
    assert abs(np.sqrt(abs(np.linalg.det(move[:2, :2]))) - 1.15) < 0.04
    centre = move @ np.asarray([100, 100, 1.0])
    assert np.hypot(centre[0] - 360, centre[1] - 170) < 3
    mid = interpolate(first, last, [0.5])[0]
    x, y, _ = where_is(mid, bg)
    assert abs(x - 230) < 5 and abs(y - 135) < 5


def blocks(seed: int, h: int, w: int, cell: int) -> np.ndarray:
    """Hard-edged squares of random colours (cobbles, a crowd, foliage at a distance):
    what lies around a subject differs entirely from one place to the next."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (-(-h // cell), -(-w // cell), 3)).astype(np.uint8)
    big = cv2.resize(small, (small.shape[1] * cell, small.shape[0] * cell),
                     interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(big[:h, :w])


def test_a_turning_subject_over_busy_texture_is_drawn_once_halfway() -> None:
    """Moved less than its size and turned, over hard texture: its region holds where it was
    and where it went, and the template search (the region with a rim of its surroundings)
    peaks elsewhere. Its own features find it (before they did, it was shown half twice:
    1.5 times its area)."""
    bg, subject = blocks(8, H, W, 12), sprite(seed=21, size=(130, 100))
    first = place(bg, subject, (220, 140))
    last = place(bg, subject, (310, 165), turn=4.0)
    mid = interpolate(first, last, [0.5])[0]
    want = place(bg, subject, (265, 152.5), turn=2.0)
    x, y, area = where_is(mid, bg)
    wx, wy, warea = where_is(want, bg)
    assert abs(x - wx) < 3 and abs(y - wy) < 3
    assert 0.85 < area / warea < 1.15  # once, whole
    assert cv2.absdiff(mid, want).mean() < 2


def test_a_pan_over_a_sky_with_texture_in_one_corner_is_still_a_camera() -> None:
    """The other side of the rule above: all the features on a small part of the frame, but
    the whole frame moves (a gradient sky with a textured patch, panned 20 px)."""
    h, w = H + 40, W + 60
    world = cv2.resize(flat(), (w, h), interpolation=cv2.INTER_LINEAR)
    world[20:100, 30:140] = blocks(4, 80, 110, 4)
    first, last = world[10:10 + H, 10:10 + W], world[14:14 + H, 30:30 + W]
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in (first, last)]
    found = find_camera(*grey)
    assert found is not None
    assert np.allclose(found[:2, 2], [-20, -4], atol=0.5)


def test_a_plate_is_filled_with_background_where_the_other_frame_shows_another_subject(
) -> None:
    """Two subjects that swap places: each one's place at this end shows the other at the
    other end, so the plate must be filled from around it in this frame, not from the
    other frame's picture there (the other subject)."""
    bg = flat()
    small, big = sprite(seed=22, size=(60, 40)), sprite(seed=21, size=(90, 60))
    here, there = place(bg, small, (240, 136)), place(bg, big, (240, 136))
    mine = place(np.zeros((H, W, 3), np.uint8), (np.full((40, 60, 3), 255, np.uint8),
                                                 small[1]), (240, 136))[..., 0] / 255.0
    theirs = place(np.zeros((H, W, 3), np.uint8), (np.full((60, 90, 3), 255, np.uint8),
                                                   big[1]), (240, 136))[..., 0] / 255.0
    plate, _ = _plate(here, there, mine.astype(np.float32), theirs.astype(np.float32),
                      np.eye(3))
    spot = (slice(116, 156), slice(210, 270))
    assert cv2.absdiff(plate[spot], bg[spot]).mean() < 4  # sky, not the other subject


def test_a_subject_over_a_flat_background_is_not_taken_for_the_camera() -> None:
    """Its features are the only ones in the frame and all agree on its move: fitted as a
    homography, that move dragged the sky along (up to 10 levels off here)."""
    bg = flat()
    subject = (blocks(3, 90, 120, 3), sprite(size=(120, 90))[1])
    first = place(bg, subject, (200, 120))
    last = place(bg, subject, (230, 145), scale=1.1, turn=-4.0)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (first, last)]
    assert find_camera(*grey) is None
    mid = interpolate(first, last, [0.5])[0]
    away = np.ones((H, W), bool)
    away[40:230, 100:340] = False  # around both places of the subject
    assert cv2.absdiff(mid, bg).max(axis=2)[away].max() <= 2  # the sky stands still


def test_a_subject_that_leaves_the_frame_fades_whole_in_place() -> None:
    bg, subject = flat(), sprite()
    first = place(bg, subject, (440, 136))  # at the right edge, partly outside
    last = bg.copy()  # it has left
    frames = interpolate(first, last, [0.25, 0.5, 0.75])
    area = (slice(100, 172), slice(395, W))
    for t, frame in zip((0.25, 0.5, 0.75), frames, strict=True):
        dissolve = cv2.addWeighted(first, 1 - t, last, t, 0)
        assert cv2.absdiff(frame[area], dissolve[area]).mean() < 2.5, t
        outside = np.ones((H, W), bool)
        outside[90:182, 380:] = False
        assert cv2.absdiff(frame, bg).max(axis=2)[outside].max() < 20, t  # no torn pieces


def test_end_frames_stay_exact_and_near_ends_stay_close() -> None:
    bg, subject = backgrounds()["textured"], sprite()
    first, last = place(bg, subject, (90, 190)), place(bg, subject, (390, 80))
    out = interpolate(first, last, [0.0, 0.01, 0.99, 1.0])
    assert np.array_equal(out[0], first) and np.array_equal(out[-1], last)
    assert cv2.absdiff(out[1], first).mean() < 1.5 and cv2.absdiff(out[2], last).mean() < 1.5


def test_crossing_subjects_keep_one_order() -> None:
    bg = flat()
    big, small = sprite(seed=21, size=(90, 60)), sprite(seed=22, size=(60, 40))
    first = place(place(bg, big, (80, 136)), small, (400, 136))
    last = place(place(bg, big, (400, 136)), small, (80, 136))
    times = [0.4, 0.45, 0.5, 0.55, 0.6]
    in_front = set()
    for t, frame in zip(times, interpolate(first, last, times), strict=True):
        one = place(place(bg, big, (80 + 320 * t, 136)), small, (400 - 320 * t, 136))
        other = place(place(bg, small, (400 - 320 * t, 136)), big, (80 + 320 * t, 136))
        # where both are at this time: the middle of their overlap
        x0 = max(80 + 320 * t - 45, 400 - 320 * t - 30)
        x1 = min(80 + 320 * t + 45, 400 - 320 * t + 30)
        mid = round((x0 + x1) / 2)
        centre = (slice(128, 144), slice(mid - 4, mid + 4))
        errs = [cv2.absdiff(frame[centre], x[centre]).mean() for x in (one, other)]
        assert min(errs) < 6 and min(errs) < 0.5 * max(errs), t  # one of them, whole
        in_front.add(int(np.argmin(errs)))
    assert len(in_front) == 1  # and the same one all along


def test_nothing_is_layered_when_everything_moves_with_the_camera() -> None:
    bg = textured(np.random.default_rng(9), H + 20, W + 40, (30, 30, 30))
    first, last = bg[10:10 + H, 0:W], bg[10:10 + H, 24:24 + W]
    c0, c1 = first.copy(), last.copy()
    flow = np.zeros((H, W, 2), np.float32)
    flow[..., 0] = 24
    camera = np.asarray([[1, 0, -24], [0, 1, 0], [0, 0, 1]], np.float64)
    assert find_subjects(c0, c1, camera, flow, -flow) == []


def test_plates_are_doubled_again_only_where_they_differ() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (60, 90, 3)).astype(np.uint8)
    for box in ((20, 10, 30, 25), (0, 0, 30, 20), (70, 40, 20, 20)):
        plate = frame.copy()
        x, y, bw, bh = box
        plate[y:y + bh, x:x + bw] = rng.integers(0, 255, plate[y:y + bh, x:x + bw].shape)
        assert np.array_equal(_redouble(double(frame), plate, box), double(plate))


def test_odd_pairs_never_break_the_subject_stage() -> None:
    """Random sizes, plain and noisy pictures, discs thrown anywhere (in and out of the
    frame), unrelated frames: every render completes with exact ends (bounded: 40 pairs)."""
    rng = np.random.default_rng(1)
    for case in range(40):
        w, h = int(rng.integers(32, 240)), int(rng.integers(32, 180))
        first = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3)).astype(np.uint8), (0, 0),
                                 float(rng.uniform(0.5, 4)))
        if case % 4 == 0:
            first[:] = rng.integers(0, 255, 3)  # plain
        last = first.copy()
        for _ in range(int(rng.integers(0, 4))):
            r = int(rng.integers(2, max(3, min(w, h) // 2)))
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.circle(first, (x, y), r, colour, -1)
            cv2.circle(last, (x + int(rng.integers(-w, w)), y + int(rng.integers(-h, h))), r,
                       colour, -1)
        if case % 7 == 6:
            last = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)  # unrelated
        out = interpolate(first, last, [0.0, 0.3, 0.5, 1.0])
        assert np.array_equal(out[0], first) and np.array_equal(out[-1], last), case
        assert all(f.shape == first.shape and f.dtype == np.uint8 for f in out), case


def ghost_error(mid: np.ndarray, bg: np.ndarray, subject: tuple[np.ndarray, np.ndarray],
                ends: tuple[tuple[float, float], ...], halfway: tuple[float, float],
                scale: float = 1.0) -> float:
    """Mean error against the background where the subject was (or will be) but is not at
    t = ½: about the subject's contrast when it is shown twice, near 0 when drawn once."""
    blank = np.zeros_like(bg)
    white = (np.full_like(subject[0], 255), subject[1])
    now = place(blank, white, halfway, (1 + scale) / 2)[..., 0] > 10
    where = np.zeros(bg.shape[:2], bool)
    for centre, size in zip(ends, (1.0, scale), strict=True):
        where |= place(blank, white, centre, size)[..., 0] > 240
    where &= ~cv2.dilate(now.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert where.sum() > 300  # the test's own premise: the subject uncovers something
    return float(cv2.absdiff(mid, bg).max(axis=2)[where].mean())


def half_plain(seed: int, size: tuple[int, int], colour: tuple[int, int, int]
               ) -> tuple[np.ndarray, np.ndarray]:
    """A subject whose upper half is textured and lower half plain ``colour``."""
    picture, alpha = sprite(seed, size)
    picture[size[1] // 2:] = colour
    return picture, alpha


def test_a_partly_plain_subject_moved_less_than_its_size_is_drawn_once() -> None:
    """A subject overlaps itself where it moved less than its size: its plain part does not
    change there, and where its outline meets a background of its own colour the changed
    region is not closed around it. It is still carried whole, not half of it left behind."""
    colour = (150, 140, 200)
    bg = textured(np.random.default_rng(6), H, W, (30, 70, 30))
    bg[150:] = colour  # a plain floor of the subject's plain colour below its lower edge
    subject = half_plain(13, (96, 80), colour)
    start, end = (200.0, 110.0), (236.0, 110.0)  # 36 px: under half its width
    first, last = place(bg, subject, start), place(bg, subject, end)
    mid = interpolate(first, last, [0.5])[0]
    assert ghost_error(mid, bg, subject, (start, end), (218.0, 110.0)) < 8
    want = place(bg, subject, (218.0, 110.0))
    body = (slice(80, 140), slice(190, 246))
    assert cv2.absdiff(mid[body], want[body]).mean() < 6


def test_a_subject_the_flow_follows_is_layered_where_it_uncovers_texture() -> None:
    """Given flows that carry a textured subject exactly (on noisy frames: the flow's error
    at the ends is as low as the layer's), the subject is still layered when it uncovers a
    good part of where it was: in between the dense path has no background there and
    shows the subject twice. A subject that uncovers little is left to the flow."""
    bg = textured(np.random.default_rng(8), H, W, (40, 60, 30))
    subject = sprite(seed=14, size=(110, 90))
    white = (np.full_like(subject[0], 255), subject[1])
    rng = np.random.default_rng(14)
    start = (200.0, 130.0)
    counts = []
    for shift in ((36, 24), (12, 8)):
        end = (start[0] + shift[0], start[1] + shift[1])
        first, last = (np.clip(place(bg, subject, c) + rng.normal(0, 3, bg.shape), 0, 255
                               ).astype(np.uint8) for c in (start, end))
        f01, f10 = np.zeros((H, W, 2), np.float32), np.zeros((H, W, 2), np.float32)
        f01[place(np.zeros_like(bg), white, start)[..., 0] > 127] = shift
        f10[place(np.zeros_like(bg), white, end)[..., 0] > 127] = (-shift[0], -shift[1])
        found = find_subjects(first, last, None, f01, f10)
        counts.append(len(found))
        if found:
            centre = found[0].move @ np.asarray([*start, 1.0])
            assert np.hypot(centre[0] - end[0], centre[1] - end[1]) < 2
    assert counts == [1, 0]


def test_a_subject_passing_behind_another_is_drawn_whole_behind_it() -> None:
    """Two subjects over a sky; at the end one stands partly in front of the other. The one
    behind is seen whole only at the start: it is carried whole (its hidden part from the
    start frame), behind the other, and nothing of it is left where it was. Before, only
    the part seen at both ends was carried: its lower half was drawn half transparent in
    between and the rest smeared at its start (an error of 10.6 levels over its body)."""
    bg = flat()
    front, behind = sprite(seed=31, size=(70, 56)), sprite(seed=32, size=(70, 56))

    def at(t: float) -> np.ndarray:
        return place(place(bg, behind, (80 + 230 * t, 210 - 30 * t)), front,
                     (80 + 250 * t, 60 + 90 * t))

    mid, want = interpolate(at(0.0), at(1.0), [0.5])[0], at(0.5)
    body = (slice(182, 208), slice(178, 212))  # the subject behind, halfway
    assert cv2.absdiff(mid[body], want[body]).mean() < 3
    start = (slice(190, 230), slice(50, 110))
    assert cv2.absdiff(mid[start], bg[start]).mean() < 1
    assert cv2.absdiff(mid, want).mean() < 0.4
    # and when they overlap, the one in front stays in front
    end = interpolate(at(0.0), at(1.0), [0.95])[0]
    overlap = (slice(168, 174), slice(310, 330))
    assert cv2.absdiff(end[overlap], at(0.95)[overlap]).mean() < 6


def test_a_small_blurred_subject_that_turned_over_busy_texture_is_found() -> None:
    """Small and soft (too few features), turned and grown, over hard texture (the template
    search's rim of surroundings differs at each place): its two places are the pair's two
    changed regions of its size, and the move between them, refined, finds it. Before, it
    was shown twice (33 and 42 levels of error where it was and where it went)."""
    bg = blocks(0, H, W, 12)
    picture, alpha = sprite(seed=40, size=(44, 36))
    subject = (cv2.GaussianBlur(picture, (0, 0), 1.5), alpha)
    start, end = (150.0, 90.0), (215.0, 160.0)
    first = place(bg, subject, start)
    last = place(bg, subject, end, scale=1.06, turn=6.0)
    mid = interpolate(first, last, [0.5])[0]
    for x, y in (start, end):  # no ghost where it was or will be
        patch = (slice(int(y) - 10, int(y) + 10), slice(int(x) - 12, int(x) + 12))
        assert cv2.absdiff(mid[patch], bg[patch]).mean() < 2, (x, y)
    want = place(bg, subject, (182.5, 125.0), scale=1.03, turn=3.0)
    assert cv2.absdiff(mid, want).mean() < 0.5


def test_a_subject_that_shrank_is_judged_from_its_sharper_end() -> None:
    """A subject with sharp detail that shrank: seen from its larger end, its smaller
    picture is enlarged and blurred by the resampling (an error of about 10 levels that the
    layer, drawn from both ends, does not make); from its smaller end it is matched within
    about one level, so the layer beats a flow that misses by 9."""
    bg = textured(np.random.default_rng(60), H, W, (30, 60, 30))
    _, alpha = sprite(seed=70, size=(84, 100))
    subject = (cv2.GaussianBlur(blocks(80, 100, 84, 4), (0, 0), 0.8), alpha)
    start, end = (240.0, 140.0), (244.0, 130.0)
    first, last = place(bg, subject, start), place(bg, subject, end, scale=0.885)
    to_end = cv2.getRotationMatrix2D(start, 0.0, 0.885)
    to_end[:, 2] += np.subtract(end, start)
    move = np.vstack([to_end, [0.0, 0.0, 1.0]])
    mask0 = (place(np.zeros_like(bg), (np.full_like(subject[0], 255), alpha), start)[..., 0]
             > 127).astype(np.uint8)
    mask1 = cv2.warpAffine(mask0, to_end, (W, H), flags=cv2.INTER_NEAREST)
    found = _subject(mask0, mask1, move)
    xy = grid(W, H)
    f01 = (cv2.transform(xy.reshape(-1, 1, 2), to_end).reshape(H, W, 2) - xy)
    misses = (np.full((H, W), 9, np.uint8), np.full((H, W), 9, np.uint8))
    assert colour_error(first, last, mask0, move) > 6  # from the larger end
    assert _beats_flow(first, last, found, misses, f01, None)


def test_a_piece_of_a_gradient_sky_is_not_a_thing() -> None:
    """Light falls off across a sky: a patch of it varies by more than a textureless thing
    may, yet it is no thing (a sky moved along with a subject looks like the sky standing
    still). A textured patch, and a plain one unlike its surroundings, are."""
    ramp = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    sky = np.broadcast_to(np.float32([60, 90, 200]) + ramp * np.float32([150, 120, 40]),
                          (H, W, 3))
    sky = np.clip(sky + np.random.default_rng(2).normal(0, 1.0, (H, W, 3)), 0, 255
                  ).astype(np.uint8)
    mask = np.zeros((H, W), np.uint8)
    mask[60:200, 200:300] = 1
    assert float(sky[mask > 0].std(axis=0).max()) > 8  # more than a plain patch's spread
    assert not _distinct(sky, mask)
    textured_sky = sky.copy()
    textured_sky[60:200, 200:300] = blocks(3, 140, 100, 6)
    assert _distinct(textured_sky, mask)
    plain = sky.copy()
    plain[60:200, 200:300] = (200, 60, 40)
    assert _distinct(plain, mask)
