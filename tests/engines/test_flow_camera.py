"""The flow engine on camera moves and on an object moving over a still background."""

from __future__ import annotations

import cv2
import numpy as np

from segue.engines.flow import interpolate
from segue.engines.flow.warp import inside

W, H = 320, 192
BAND = 32


def photo(width: int, height: int, seed: int) -> np.ndarray:
    """Detail at every scale plus hard-edged shapes, like a photograph: features to match."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    for octave in range(1, 6):
        cells = (max(2, height >> (7 - octave)), max(2, width >> (7 - octave)))
        img += cv2.resize(rng.random((*cells, 3)).astype(np.float32), (width, height),
                          interpolation=cv2.INTER_CUBIC) / octave
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    for _ in range(80):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.circle(img, (x, y), int(rng.integers(3, 18)), color, -1, cv2.LINE_AA)
    return img


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def outer_band(img: np.ndarray) -> np.ndarray:
    keep = np.ones(img.shape[:2], bool)
    keep[BAND:-BAND, BAND:-BAND] = False
    return img[keep]


def test_camera_only_move_is_reproduced_without_border_smear() -> None:
    # a virtual camera over a larger scene: pan 7 % of the width, zoom 10 %, roll 2 degrees
    world = photo(W + 160, H + 96, seed=41)
    view0 = np.array([[1, 0, -80], [0, 1, -48], [0, 0, 1]], np.float64)
    move = np.eye(3)
    move[:2] = cv2.getRotationMatrix2D((W / 2, H / 2), 2.0, 1.10)
    move[0, 2] += 0.07 * W

    def shot(m: np.ndarray) -> np.ndarray:
        return cv2.warpPerspective(world, m @ view0, (W, H), flags=cv2.INTER_CUBIC)

    c = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
    c1 = cv2.perspectiveTransform(c.reshape(-1, 1, 2), move).reshape(-1, 2)
    times = [0.25, 0.5, 0.75]
    # the convention: every point of frame 0 moves linearly to its place in frame 1
    truth = [shot(cv2.getPerspectiveTransform(c, (c + t * (c1 - c)).astype(np.float32)))
             for t in times]
    got = interpolate(shot(np.eye(3)), shot(move), times)
    for t, frame, want in zip(times, got, truth, strict=True):
        assert psnr(frame, want) >= 40, t
        assert psnr(outer_band(frame), outer_band(want)) >= 36, t  # where content enters


def test_textured_object_on_a_still_background_keeps_its_shape() -> None:
    background = photo(W, H, seed=42)
    sprite = photo(48, 48, seed=43)

    def at(x: int, y: int) -> np.ndarray:
        img = background.copy()
        img[y:y + 48, x:x + 48] = sprite
        return img

    first, mid, last = at(100, 70), at(112, 76), at(124, 82)
    got = interpolate(first, last, [0.5], camera_fixed=True)[0]
    box = (slice(76, 76 + 48), slice(112, 112 + 48))
    core = (slice(80, 120), slice(116, 156))  # inside its edges, which are occlusions
    blend = cv2.addWeighted(first, 0.5, last, 0.5, 0)
    assert psnr(got[core], mid[core]) >= 30  # the square is where it belongs, sharp
    assert psnr(got[box], mid[box]) > psnr(blend[box], mid[box]) + 12
    still = (slice(0, 60), slice(0, W))  # far from the path the background stays exact
    assert psnr(got[still], mid[still]) >= 45


def test_samples_outside_the_frame_get_no_weight() -> None:
    pos = np.zeros((3, 4, 2), np.float32)  # a 4×3 grid; each entry says where it samples
    pos[0, :, 0] = [-2.0, -0.5, 0.0, 3.0]
    pos[1, :, 1] = [1.0, 2.0, 2.5, 9.0]
    weight = inside(pos)
    assert weight[0].tolist() == [0.0, 0.5, 1.0, 1.0]  # x = -2 is out, 0 and 3 are in
    assert weight[1].tolist() == [1.0, 1.0, 0.5, 0.0]  # rows run 0..2


def test_a_homography_that_squashes_or_mirrors_locally_is_no_camera_move() -> None:
    from segue.engines.flow.camera import locally_plausible, plausible

    w, hgt = 320, 180
    zoom_roll = np.eye(3)
    zoom_roll[:2] = cv2.getRotationMatrix2D((w / 2, hgt / 2), 3.0, 1.15)
    assert locally_plausible(zoom_roll, w, hgt)
    squash = np.diag([1.0, 0.55, 1.0])  # the frame as a whole still looks fine
    assert plausible(squash, w, hgt) and not locally_plausible(squash, w, hgt)
    mirror = np.asarray([[-1.0, 0.0, w], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert not locally_plausible(mirror, w, hgt)
