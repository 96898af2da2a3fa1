"""The flow engine on drawn scenes: exact ends, sizes, determinism, camera, fallback."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segue.domain import Mode
from segue.engines.base import RenderJob, create_engine
from segue.engines.flow import FlowEngine, estimate_camera, interpolate, iter_interpolate
from segue.errors import TaskInterrupted


def scene(width: int = 160, height: int = 96, seed: int = 0) -> np.ndarray:
    """A textured RGB picture (smooth noise plus shapes): something flow can lock on to."""
    rng = np.random.default_rng(seed)
    noise = rng.random((max(2, height // 8), max(2, width // 8), 3)).astype(np.float32)
    img = (cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC) * 200 + 20)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(12):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.circle(img, (x, y), int(rng.integers(3, max(4, width // 10))), color, -1)
    return img


def shifted(img: np.ndarray, dx: float, dy: float = 0.0) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def test_endpoints_are_exact_and_sizes_kept() -> None:
    first, last = scene(), shifted(scene(), 6)
    out = interpolate(first, last, [0.0, 0.25, 0.5, 1.0])
    assert len(out) == 4
    assert all(f.shape == first.shape and f.dtype == np.uint8 for f in out)
    assert np.array_equal(out[0], first) and np.array_equal(out[-1], last)


def test_midpoint_of_a_pan_beats_a_blend() -> None:
    base = scene(200, 120, seed=3)
    first, mid, last = shifted(base, -4, -2), base, shifted(base, 4, 2)
    got = interpolate(first, last, [0.5])[0]
    blend = ((first.astype(np.uint16) + last) // 2).astype(np.uint8)
    inner = (slice(12, -12), slice(12, -12))  # the borders are not in either frame
    assert psnr(got[inner], mid[inner]) > psnr(blend[inner], mid[inner]) + 6


@pytest.mark.parametrize("size", [(32, 32), (33, 47), (181, 37), (301, 129)])
def test_odd_and_tiny_sizes(size: tuple[int, int]) -> None:
    width, height = size
    first, last = scene(width, height, 1), shifted(scene(width, height, 1), 2, 1)
    out = interpolate(first, last, [0.0, 0.3, 0.7, 1.0])
    assert [f.shape for f in out] == [(height, width, 3)] * 4
    assert np.array_equal(out[0], first) and np.array_equal(out[3], last)


def test_deterministic_for_a_seed() -> None:
    first, last = scene(seed=5), shifted(scene(seed=5), 5, 3)
    a = interpolate(first, last, [0.2, 0.6], seed=11)
    b = interpolate(first, last, [0.2, 0.6], seed=11)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert interpolate(first, last, [0.5], seed=2**32 - 1)[0].shape == first.shape  # max seed


def test_camera_is_found_and_ignored_when_fixed() -> None:
    base = scene(320, 200, seed=2)
    last = shifted(base, 15, 5)
    g0, g1 = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (base, last))
    h = estimate_camera(g0, g1, seed=1)
    assert h is not None
    assert np.allclose(h[:2, 2], [15, 5], atol=1.0)
    moving = interpolate(base, last, [0.5], camera_fixed=False)[0]
    fixed = interpolate(base, last, [0.5], camera_fixed=True)[0]
    inner = (slice(20, -20), slice(30, -30))
    want = shifted(base, 7.5, 2.5)
    assert psnr(moving[inner], want[inner]) > 28
    assert psnr(fixed[inner], want[inner]) > 25  # flow alone still follows the pan


def test_unrelated_frames_fall_back_to_a_dissolve() -> None:
    first, last = scene(seed=10), scene(seed=99)
    mid = interpolate(first, last, [0.5], camera_fixed=True)[0]
    blend = cv2.addWeighted(first, 0.5, last, 0.5, 0)
    assert np.abs(mid.astype(int) - blend).max() <= 1


@pytest.mark.parametrize(("dx", "warped"), [(2, False), (16, True)])
def test_flows_failing_the_round_trip_are_warped_only_where_the_pair_moves_far(
        monkeypatch: pytest.MonkeyPatch, dx: int, warped: bool) -> None:
    """Too few forward/backward flows agree (made so here): a pair that moves less than a
    flow patch is dissolved (rippling water: its double image is a blur), one that moves
    farther is warped all the same (a dissolve would show everything twice, far apart)."""
    from segue.engines.flow import engine

    base = scene(320, 192, seed=7)
    first, last = shifted(base, -dx / 2), shifted(base, dx / 2)
    monkeypatch.setattr(engine, "_consistent_share", lambda *_: engine._MIN_CONSISTENT - 0.1)
    motion = engine.analyse(first, last, engine.PRESETS["medium"], True, 0, subjects=False)
    assert (motion.f01 is not None) is warped
    mid = interpolate(first, last, [0.5], camera_fixed=True)[0]
    blend = cv2.addWeighted(first, 0.5, last, 0.5, 0)
    inner = (slice(20, -20), slice(20, -20))
    if warped:
        assert psnr(mid[inner], base[inner]) > psnr(blend[inner], base[inner]) + 6
    else:
        assert np.abs(mid.astype(int) - blend).max() <= 1


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        interpolate(scene(), scene(120, 80), [0.5])
    with pytest.raises(ValueError):
        interpolate(scene(20, 20), scene(20, 20), [0.5])
    with pytest.raises(ValueError):
        interpolate(scene(), scene(), [1.5])


def test_streams_lazily() -> None:
    frames = iter_interpolate(scene(), shifted(scene(), 3), (i / 4 for i in range(5)))
    assert np.array_equal(next(frames), scene())
    assert len(list(frames)) == 4


def job(frames: int, **extra: object) -> RenderJob:
    first = scene(128, 72, seed=4)
    return RenderJob(prompt="", mode=Mode.FIRST_LAST, width=128, height=72, frames=frames,
                     seed=3, first=first, last=shifted(first, 5), **extra)  # type: ignore[arg-type]


def test_engine_renders_the_job() -> None:
    engine = create_engine("flow", {"preset": "fast"})
    assert isinstance(engine, FlowEngine) and engine.name == "flow"
    seen: list[float] = []
    j = job(25, progress=seen.append)
    out = list(engine.render(j))
    assert len(out) == 25 and out[0].shape == (72, 128, 3)
    assert np.array_equal(out[0], j.first) and np.array_equal(out[-1], j.last)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 25


def test_engine_lets_interruption_through() -> None:
    def progress(fraction: float) -> None:
        if fraction > 0.2:
            raise TaskInterrupted("cancelled")

    with pytest.raises(TaskInterrupted):
        list(FlowEngine().render(job(30, progress=progress)))


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ValueError):
        FlowEngine(preset="ludicrous")


# --- occlusion, sharpness, exact maps, parallel frames ------------------------------------


def disc_scene(x: int, size: tuple[int, int] = (192, 128)) -> np.ndarray:
    """A disc with its own fine texture in front of a still, textured background."""
    width, height = size
    img = scene(width, height, seed=21)
    noise = np.random.default_rng(22).integers(0, 120, (41, 41, 3)).astype(np.uint8)
    sprite = cv2.GaussianBlur(noise, (0, 0), 1.2) + np.uint8([130, 20, 20])  # red, grainy
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, (x, height // 2), 20, 255, -1)
    layer = np.zeros_like(img)
    layer[height // 2 - 20:height // 2 + 21, x - 20:x + 21] = sprite
    img[mask > 0] = layer[mask > 0]
    return img


def test_moving_disc_over_still_background_beats_a_blend_where_it_moves() -> None:
    first, mid, last = disc_scene(60), disc_scene(66), disc_scene(72)
    got = interpolate(first, last, [0.5], camera_fixed=True)[0]
    blend = cv2.addWeighted(first, 0.5, last, 0.5, 0)
    region = (slice(64 - 26, 64 + 27), slice(60 - 26, 72 + 27))  # the disc's whole path
    err = np.abs(got[region].astype(int) - mid[region]).mean()
    err_blend = np.abs(blend[region].astype(int) - mid[region]).mean()
    assert err < 0.6 * err_blend
    assert psnr(got, mid) > psnr(blend, mid) + 2


def test_visibility_gives_no_weight_to_an_end_that_sees_outside_its_frame() -> None:
    from segue.engines.flow.warp import grid, reverse_flow, visibility_weight

    f01 = np.full((60, 80, 2), 0, np.float32)
    f01[..., 0] = 20  # the whole picture moves 20 px right: frame 1 shows new content left
    f10 = -f01
    xy = grid(80, 60)
    to0, to1 = reverse_flow(f01, f10, 0.5, xy), reverse_flow(f10, f01, 0.5, xy)
    w1 = visibility_weight(to0, to1, 0.5, xy)
    assert w1[:, :6].min() > 0.9  # left edge: frame 0 saw only what lies outside it
    assert w1[:, -6:].max() < 0.1  # right edge: frame 1 no longer shows it
    assert np.allclose(w1[:, 20:60], 0.5, atol=0.02)  # seen by both: blend by time


def test_still_pixels_stay_exact_and_maps_are_exact_band_by_band() -> None:
    from segue.engines.flow.warp import Warper, double

    img = scene(61, 37, seed=8)
    big = double(img)
    assert big.shape == (74, 122, 3) and np.array_equal(big[::2, ::2], img)
    for size, levels in (((1248, 704), 1), ((181, 37), 2), ((33, 47), 1), ((301, 129), 0)):
        w, h = size
        warper = Warper(np.zeros((h, w, 3), np.uint8), np.zeros((h, w, 3), np.uint8), levels, 2)
        flow = np.zeros_like(warper.base)
        bands = [[x.copy() for x in warper._maps(cv2.scaleAdd(flow, 1.0, warper.base), b, "m")]
                 for b in warper.bands]
        whole = np.concatenate([m[0] for m in bands])
        fractions = np.concatenate([m[1] for m in bands])
        want = np.dstack(np.meshgrid(np.arange(w) * 2, np.arange(h) * 2))
        assert np.array_equal(whole, want) and not fractions.any(), size


def test_bands_grow_any_map_as_the_whole_frame_does() -> None:
    """The margins of map rows (and columns) around a band are enough for ``pyrUp`` to be exact."""
    from segue.engines.flow.warp import Warper

    rng = np.random.default_rng(3)
    for (w, h), levels in (((1248, 704), 1), ((1920, 1088), 2), ((181, 37), 2), ((97, 301), 3)):
        warper = Warper(np.zeros((h, w, 3), np.uint8), np.zeros((h, w, 3), np.uint8), levels, 2)
        small = rng.normal(0, 50, warper.base.shape).astype(np.float32)
        whole = warper._grow(small)
        bands = [warper._grow_band(small, band, "g").copy() for band in warper.bands]
        assert np.array_equal(np.concatenate(bands), whole), (w, h)
        band = warper.bands[len(warper.bands) // 2]
        for x0, x1 in ((0, 9), (w // 3, w // 2 + 1), (w - 13, w), (0, w)):
            block = warper._grow_block(small, band, x0, x1)
            assert np.array_equal(block, whole[band.y0:band.y1, x0:x1]), (w, h, x0, x1)


def test_median_is_numpys() -> None:
    from segue.engines.flow.warp import median

    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 10, 4001):
        values = rng.normal(0, 5, (n, 2)).astype(np.float32)
        assert median(values).tobytes() == np.median(values).tobytes()


def test_parallel_frames_equal_sequential_ones() -> None:
    first, last = scene(160, 96, seed=6), shifted(scene(160, 96, seed=6), 7, 2)
    times = [i / 12 for i in range(13)]
    one = interpolate(first, last, times, workers=1)
    two = interpolate(first, last, times, workers=2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    assert np.array_equal(two[0], first) and np.array_equal(two[-1], last)


def test_parallel_frames_pass_errors_and_stop_early() -> None:
    frames = iter_interpolate(scene(), shifted(scene(), 3), [0.0, 0.5, 0.7, 2.0], workers=2)
    assert np.array_equal(next(frames), scene())
    with pytest.raises(ValueError):
        list(frames)
    early = iter_interpolate(scene(), shifted(scene(), 3), [i / 30 for i in range(31)],
                             workers=2)
    before = cv2.getNumThreads()
    next(early), next(early), next(early)
    assert cv2.getNumThreads() == 1  # per-frame work: one OpenCV thread per worker
    early.close()  # must not hang or leak a running pool
    assert cv2.getNumThreads() == before  # and the process setting is given back


def test_all_presets_render_sharp_midpoints() -> None:
    base = scene(200, 120, seed=3)
    first, mid, last = shifted(base, -3.5, -1), base, shifted(base, 3.5, 1)
    inner = (slice(12, -12), slice(12, -12))
    scores = {p: psnr(interpolate(first, last, [0.5], preset=p)[0][inner], mid[inner])
              for p in ("fast", "medium", "high")}
    assert min(scores.values()) > 28
    assert scores["medium"] > scores["fast"]  # the doubled sources are sharper



def ball_scene(x: int, y: int) -> np.ndarray:
    """A bright, grainy ball (31 px across) over a still, textured background."""
    img = scene(256, 160, seed=31)
    noise = np.random.default_rng(32).integers(0, 60, (31, 31, 3)).astype(np.uint8)
    sprite = cv2.GaussianBlur(noise, (0, 0), 1.0) + np.uint8([190, 170, 60])
    mask = np.zeros((31, 31), np.uint8)
    cv2.circle(mask, (15, 15), 15, 1, -1)
    region = img[y - 15:y + 16, x - 15:x + 16]
    region[mask > 0] = sprite[mask > 0]
    return img


def test_object_moving_farther_than_its_size_is_carried_to_its_midpoint() -> None:
    # the ball moves 76 px, more than twice its size: dense flow alone loses it (a dissolve)
    first, mid, last = ball_scene(84, 68), ball_scene(120, 80), ball_scene(156, 92)
    got = interpolate(first, last, [0.5], camera_fixed=True)[0]
    blend = cv2.addWeighted(first, 0.5, last, 0.5, 0)
    region = (slice(80 - 17, 80 + 18), slice(120 - 17, 120 + 18))  # the ball at t = 0.5
    err = np.abs(got[region].astype(int) - mid[region]).mean()
    err_blend = np.abs(blend[region].astype(int) - mid[region]).mean()
    assert err < 0.5 * err_blend


def test_block_moves_are_kept_only_when_searching_back_finds_the_start() -> None:
    from segue.engines.flow.motion import _find_move_both_ways

    rng = np.random.default_rng(3)
    patch = cv2.GaussianBlur(rng.integers(0, 255, (24, 24)).astype(np.uint8), (0, 0), 1.0)
    ga, gb = np.full((128, 192), 90, np.uint8), np.full((128, 192), 90, np.uint8)
    ga[20:44, 20:44] = patch
    gb[20:44, 110:134] = patch
    box = (20, 20, 24, 24)
    assert np.allclose(_find_move_both_ways(ga, gb, box, 128), [90, 0])
    # a look-alike of the block in the first frame: searching back from where the block
    # landed finds the look-alike, so the move is not believed
    noisy = patch.astype(int) + rng.integers(-12, 13, patch.shape)
    ga[20:44, 20:44] = np.clip(noisy, 0, 255).astype(np.uint8)
    ga[80:104, 100:124] = patch
    assert _find_move_both_ways(ga, gb, box, 128) is None
