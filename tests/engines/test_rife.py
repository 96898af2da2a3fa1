"""The learned engine's network and runtime, on the real shipped checkpoint.

The checkpoint is named by ``SEGUE_RIFE_WEIGHTS`` (``.ci/run`` fetches it with ``segue
weights`` and sets it); without it, or without torch (the ``learned`` extra), these skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from segue.engines.rife import weights as w

torch = pytest.importorskip("torch")
WEIGHTS = os.environ.get("SEGUE_RIFE_WEIGHTS", "")
pytestmark = pytest.mark.skipif(not Path(WEIGHTS).is_file(),
                                reason="SEGUE_RIFE_WEIGHTS names no file (run segue weights)")


def texture(h: int = 240, w_: int = 360, seed: int = 3) -> np.ndarray:
    """Coloured noise over several octaves: detail at every scale."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w_, 3), np.float32)
    for octave in range(1, 6):
        cells = (max(2, h >> (7 - octave)), max(2, w_ >> (7 - octave)), 3)
        img += cv2.resize(rng.random(cells).astype(np.float32), (w_, h),
                          interpolation=cv2.INTER_CUBIC) / octave
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def rife():  # type: ignore[no-untyped-def]
    from segue.engines.rife.runtime import shared

    return shared(WEIGHTS, "cpu")


def pair(shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    big = texture()
    crop = (slice(16, 208), slice(16, 336))
    first = big[crop]
    last = big[16:208, 16 + shift:336 + shift]
    middle = big[16:208, 16 + shift // 2:336 + shift // 2]
    assert first.shape == last.shape == middle.shape
    return first, last, middle


def test_the_shipped_file_is_the_published_one() -> None:
    assert w.sha256(Path(WEIGHTS)) == w.SHA256


def test_the_checkpoint_fills_the_network_exactly(rife) -> None:  # type: ignore[no-untyped-def]
    state = w.load_state(Path(WEIGHTS), w.SHA256)
    assert set(state) == set(rife.net.state_dict())
    assert sum(p.numel() for p in rife.net.parameters()) == 5_664_776


def test_a_checkpoint_missing_a_key_is_refused(tmp_path: Path) -> None:
    from segue.engines.rife.runtime import Rife

    state = w.load_state(Path(WEIGHTS), None)
    del state["block4.lastconv.0.bias"]
    torch.save(state, tmp_path / "cut.pkl")
    with pytest.raises(w.WeightsError, match="do not fit the 4.25 network.*block4.lastconv"):
        Rife(tmp_path / "cut.pkl", "cpu")


def test_an_altered_installed_file_is_refused(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from segue.engines.rife.runtime import Rife

    data = bytearray(Path(WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / w.FILENAME).write_bytes(bytes(data))
    monkeypatch.setenv("SEGUE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SEGUE_RIFE_WEIGHTS")
    with pytest.raises(w.WeightsError, match="sha256 .* not the expected"):
        Rife(None, "cpu")


def test_missing_weights_say_how_to_get_them(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("SEGUE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SEGUE_RIFE_WEIGHTS")
    with pytest.raises(w.WeightsError, match="not installed.*segue weights"):
        w.locate()
    with pytest.raises(w.WeightsError, match="no file at"):
        w.locate(tmp_path / "nothing.pkl")


def test_a_shifted_texture_at_half_time(rife) -> None:  # type: ignore[no-untyped-def]
    first, last, middle = pair(8)
    out = rife.frames(first, last, [0.0, 0.5, 1.0])
    start, mid, end = list(out)
    assert np.array_equal(start, first) and np.array_equal(end, last)
    assert mid.dtype == np.uint8 and mid.shape == first.shape
    # a cross-dissolve is far from the truth here; the network's frame is not
    assert psnr((first.astype(np.float32) + last) / 2, middle) < 31
    assert psnr(mid, middle) >= 35


def test_interpolate_is_deterministic_and_keeps_the_ends() -> None:
    from segue.engines.rife import interpolate

    first, last, _ = pair(6)
    times = [0.0, 0.3, 0.7, 1.0]
    a = interpolate(first, last, times, weights=WEIGHTS, device="cpu")
    b = interpolate(first, last, times, weights=WEIGHTS, device="cpu")
    assert len(a) == 4
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert np.array_equal(a[0], first) and np.array_equal(a[-1], last)
    assert not np.array_equal(a[1], a[2])


def test_keys_equal_the_network_on_keys_and_stay_close_between(rife) -> None:  # type: ignore[no-untyped-def]
    first, last, _ = pair(8)
    times = [0.25, 0.5, 0.375, 0.1, 0.9]
    exact = list(rife.frames(first, last, times))
    keyed = list(rife.frames(first, last, times, keys=3))  # keys at 1/4, 1/2, 3/4
    assert np.array_equal(exact[0], keyed[0]) and np.array_equal(exact[1], keyed[1])
    assert all(psnr(e, k) > 40 for e, k in zip(exact[2:], keyed[2:], strict=True))


def test_the_mask_blend_is_offered(rife) -> None:  # type: ignore[no-untyped-def]
    first, last, middle = pair(8)
    (mid,) = rife.frames(first, last, [0.5], blend="mask")
    assert psnr(mid, middle) >= 35


@pytest.mark.parametrize("call, message", [
    (lambda f, x: f(x, x[:, :-1], [0.5]), "differ in size"),
    (lambda f, x: f(x.astype(np.float32), x, [0.5]), "uint8 RGB"),
    (lambda f, x: f(x[..., 0], x[..., 0], [0.5]), "H×W×3"),
    (lambda f, x: f(x[:20], x[:20], [0.5]), "at least 32×32"),
    (lambda f, x: f(x, x, [1.5]), "outside"),
    (lambda f, x: f(x, x, [0.5], blend="max"), "unknown blend"),
    (lambda f, x: f(x, x, [0.5], keys=0), "keys must be"),
])
def test_bad_inputs_are_told(call, message: str) -> None:  # type: ignore[no-untyped-def]
    from segue.engines.rife import interpolate

    x = texture(64, 96)

    def run(*args, **kwargs):  # type: ignore[no-untyped-def]
        return interpolate(*args, weights=WEIGHTS, device="cpu", **kwargs)

    with pytest.raises(ValueError, match=message):
        call(run, x)


def test_torch_stays_out_of_the_default_import_path() -> None:
    # a worker's start-up check of segue-rife (load) does not import it either, nor do the
    # modules whose work runs while a render loads the network
    code = ("import sys, segue.app, segue.cli, segue.engines.rife, segue.worker; "
            "import segue.engines.rife.camera, segue.engines.rife.mixed; "
            "from segue.engines.base import create_engine; create_engine('rife').load(); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_render_raises_the_network_loads_error(tmp_path: Path) -> None:
    """The network loads in a thread while the render estimates the camera: what goes wrong
    there is raised by the render, and the next render tries again."""
    from segue.domain import Mode
    from segue.engines.base import RenderJob
    from segue.engines.rife.engine import RifeEngine

    state = w.load_state(Path(WEIGHTS), None)
    del state["block4.lastconv.0.bias"]
    torch.save(state, tmp_path / "cut.pkl")
    engine = RifeEngine(str(tmp_path / "cut.pkl"), "cpu")
    first, last, _ = pan()
    jobs = [RenderJob(mode=Mode.FIRST_LAST, prompt="", width=first.shape[1],
                      height=first.shape[0], frames=5, fps=24, seed=0, first=first,
                      last=last, camera_fixed=camera_fixed)
            for camera_fixed in (False, True)]  # the camera path, and the mixed frames
    for job in jobs:
        with pytest.raises(w.WeightsError, match="do not fit the 4.25 network"):
            list(engine.render(job))
    (tmp_path / "cut.pkl").write_bytes(Path(WEIGHTS).read_bytes())
    assert len(list(engine.render(jobs[0]))) == 5


def pan() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A camera pan of 40 px over a texture with shapes (features for the camera's matches)."""
    big = texture(300, 520, seed=5)
    rng = np.random.default_rng(7)
    for _ in range(40):
        x, y = int(rng.integers(0, 500)), int(rng.integers(0, 280))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(big, (x, y), (x + int(rng.integers(8, 40)), y + int(rng.integers(8, 30))),
                      colour, -1)
    return big[40:264, 40:440], big[40:264, 80:480], big[40:264, 60:460]


def test_a_camera_pan_keeps_its_borders() -> None:
    """New content enters on one side: the network alone tears it, the camera path brings
    it from the end frame that saw it."""
    from segue.engines.rife import interpolate

    first, last, middle = pan()
    camera = interpolate(first, last, [0.0, 0.5, 1.0], weights=WEIGHTS, device="cpu")
    alone = interpolate(first, last, [0.5], camera=False, weights=WEIGHTS, device="cpu")
    assert np.array_equal(camera[0], first) and np.array_equal(camera[2], last)
    assert psnr(camera[1], middle) >= 35
    assert psnr(camera[1], middle) > psnr(alone[0], middle) + 1


def test_the_opencv_backend_matches_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          rife) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnx")
    from segue.engines.rife.runtime import Rife

    monkeypatch.setenv("SEGUE_DATA_DIR", str(tmp_path))  # where the exported graph is kept
    first, last, _ = pair(8)
    other = Rife(WEIGHTS, "cpu", "opencv")
    a, b = rife.pair(first, last), other.pair(first, last)
    flow_torch, mask_torch = rife.flows(a, 0.3)
    flow_cv, mask_cv = other.flows(b, 0.3)
    assert np.abs(flow_torch - flow_cv).max() < 0.01
    assert np.abs(mask_torch - mask_cv).max() < 0.001
    assert len(list((tmp_path / "weights" / "onnx").glob("ifnet-*-320x192.onnx"))) == 1
    with pytest.raises(ValueError, match="unknown RIFE backend"):
        Rife(WEIGHTS, "cpu", "tensorrt")


def test_frames_made_in_threads_are_the_same(rife) -> None:  # type: ignore[no-untyped-def]
    from segue.engines.rife.camera import _camera, camera_frames

    times = [i / 12 for i in range(13)]
    first, last, _ = pan()
    assert _camera(first, last, 0) is not None
    for keys in (None, 3):
        for fixed in (False, True):  # the camera path, and the mixed frames
            one = list(camera_frames(rife, first, last, times, keys, 0, fixed, workers=1))
            two = list(camera_frames(rife, first, last, times, keys, 0, fixed, workers=2))
            assert len(two) == 13
            assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))


def test_the_ensemble_averages_both_directions(rife) -> None:  # type: ignore[no-untyped-def]
    from segue.engines.rife.runtime import Rife

    first, last, middle = pair(8)
    both = Rife(WEIGHTS, "cpu", ensemble=True)
    start, mid, end = both.frames(first, last, [0.0, 0.5, 1.0])
    assert np.array_equal(start, first) and np.array_equal(end, last)
    assert psnr(mid, middle) >= 35
    one, _ = rife.flows(rife.pair(first, last), 0.3)
    two, _ = both.flows(both.pair(first, last), 0.3)
    assert 0 < np.abs(one - two).max() < 1.0  # a second opinion, close to the first
    with pytest.raises(ValueError, match="torch backend only"):
        Rife(WEIGHTS, "cpu", "opencv", ensemble=True)


def test_without_the_camera_path_the_two_engines_frames_are_mixed(rife) -> None:  # type: ignore[no-untyped-def]
    from segue.engines import flow
    from segue.engines.rife.mixed import disagreements, flow_part, flow_weight, mixed_frames

    first, last, middle = pair(6)
    part = flow_part(first, last, 0, True)
    assert part is not None
    engine = flow.interpolate(first, last, [0.5], camera_fixed=True)[0]
    assert np.array_equal(part.frame(0.5), engine)  # the flow engine's own frame
    network = next(rife.frames(first, last, [0.5]))
    share = flow_weight(*disagreements(part, first, last, rife.flows(rife.pair(first, last),
                                                                      0.5)[0]))
    assert 0.1 < share < 0.9
    start, mid, end = mixed_frames(rife, first, last, [0.0, 0.5, 1.0], camera_fixed=True)
    assert np.array_equal(start, first) and np.array_equal(end, last)
    assert np.array_equal(mid, cv2.addWeighted(engine, share, network, 1 - share, 0))
    assert psnr(mid, middle) >= 35
    alone = list(mixed_frames(rife, first, last, [0.5], camera_fixed=True, share=0.0))
    assert np.array_equal(alone[0], network)


def test_the_flow_engines_share_grows_with_the_networks_disagreement() -> None:
    from segue.engines.rife.mixed import flow_weight

    shares = [flow_weight(ratio, 1.0) for ratio in (0.5, 1.0, 1.5, 2.5, 4.0)]
    assert shares == sorted(shares) and 0 < shares[0] and shares[-1] < 1
    assert 0.25 < shares[1] < 0.4 and 0.45 < shares[2] < 0.55  # alike: the network leads


def _whole_frame(first: np.ndarray, last: np.ndarray, h: np.ndarray, flow: np.ndarray,
                 t: float) -> np.ndarray:
    """The camera path's frame computed over the whole frame: every pixel's points in both
    ends (its residual sampled, added and projected), then both ends sampled at them."""
    from segue.engines.flow.camera import camera_at
    from segue.engines.rife.camera import _blend

    hgt, w_ = first.shape[:2]
    grid = np.dstack(np.meshgrid(np.arange(w_, dtype=np.float32),
                                 np.arange(hgt, dtype=np.float32)))
    back = np.linalg.inv(camera_at(h, t, w_, hgt))
    y = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), back).reshape(hgt, w_, 2)
    residual = cv2.remap(flow, y[..., 0], y[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    at0 = y + residual[..., :2]
    at1 = cv2.perspectiveTransform((y + residual[..., 2:]).reshape(-1, 1, 2),
                                   h).reshape(hgt, w_, 2)
    w0 = cv2.remap(first, at0[..., 0], at0[..., 1], cv2.INTER_CUBIC,
                   borderMode=cv2.BORDER_REPLICATE)
    w1 = cv2.remap(last, at1[..., 0], at1[..., 1], cv2.INTER_CUBIC,
                   borderMode=cv2.BORDER_REPLICATE)

    def inside(xy: np.ndarray) -> np.ndarray:
        return ((xy[..., 0] >= -0.5) & (xy[..., 0] <= w_ - 0.5)
                & (xy[..., 1] >= -0.5) & (xy[..., 1] <= hgt - 0.5)).astype(np.uint8) * 255

    return _blend(w0, w1, inside(at0), inside(at1), t)


@pytest.mark.parametrize("where", ["middle", "border", "nowhere"])
def test_the_camera_frame_is_the_whole_frame_computation_up_to_rounding(where: str) -> None:
    """The camera alone warped over the whole frame, and the residual sampled, summed and
    projected only where it can be other than zero, give the frames of the whole-frame
    computation up to rounding (the warp computes its points in double precision, and
    rounds them to its sub-pixel grid itself): kept areas inside, on the frame's border
    (whose samples reach off the frame), or none."""
    from segue.engines.flow.warp import sample
    from segue.engines.rife.camera import _frame, _reach

    first, last, _ = pan()
    hgt, w_ = first.shape[:2]
    h = np.array([[1.03, 0.01, -30.0], [-0.008, 1.02, 4.0], [2e-5, -1e-5, 1.0]])
    keep = np.zeros((hgt, w_), np.float32)
    if where == "middle":
        keep[60:110, 150:230] = 1.0
        keep[150:160, 40:48] = 0.5
    elif where == "border":
        keep[:, :12] = 1.0
        keep[hgt - 5:, 200:260] = 1.0
    rng = np.random.default_rng(1)
    flow = rng.normal(0.0, 3.0, (hgt, w_, 4)).astype(np.float32) * keep[..., None]
    reach = _reach(keep)
    assert (reach is None) == (where == "nowhere")
    differ = moved = 0
    for t in (0.1, 0.5, 0.83):
        made = _frame(first, last, h, lambda points: sample(flow, points), t, reach)
        whole = _whole_frame(first, last, h, flow, t)
        apart = np.abs(made.astype(np.int16) - whole).max(axis=2)
        assert apart.max() <= 1 and np.count_nonzero(apart) <= apart.size // 1000
        differ += np.count_nonzero(apart)
        alone = _whole_frame(first, last, h, np.zeros_like(flow), t)  # the camera alone
        moved += np.count_nonzero(np.abs(alone.astype(np.int16) - whole).max(axis=2) > 1)
    if where != "nowhere":  # the residual's pixels, made: not the camera's alone
        assert moved > 10 * max(1, differ)


def test_the_key_flows_read_at_points_are_those_of_the_whole_frame(rife) -> None:  # type: ignore[no-untyped-def]
    from segue.engines.flow.warp import sample
    from segue.engines.rife.frames import _Keys

    first, last, _ = pair(8)
    keys = _Keys(rife, rife.pair(first, last), 3).warm()
    rng = np.random.default_rng(2)
    hgt, w_ = first.shape[:2]
    points = (rng.random((4, 256, 2)) * (w_ + 8, hgt + 8) - 4).astype(np.float32)
    for t in (0.1, 0.25, 0.4, 0.6, 0.9):
        whole = sample(keys.at(t)[0], points)
        assert np.abs(keys.sampled(t, points) - whole).max() < 1e-4 * (1 + np.abs(whole).max())
        assert np.abs(whole).max() > 1  # the pair moves: the check is not on zeros


def test_the_key_passes_keep_freed_memory_and_give_it_back() -> None:
    from segue.engines.rife import frames

    with frames.freed_memory_kept():
        with frames.freed_memory_kept():  # renders may overlap
            assert frames._kept_users == 2
        assert frames._kept_users == 1
    assert frames._kept_users == 0
