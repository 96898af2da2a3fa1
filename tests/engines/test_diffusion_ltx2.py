"""LTX-2 (keyframes with sound), Wan 2.2 TI2V, matching ends, and GPU faults, on tiny random
pipelines on the CPU (see tiny_pipelines.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from test_diffusion import FRAMES, SIZE, job, keyframes, render, spy  # noqa: E402
from tiny_pipelines import save_tiny, save_tiny_ltx2_upsampler  # noqa: E402

from segue.domain import Mode  # noqa: E402
from segue.engines.base import EngineFault, create_engine  # noqa: E402
from segue.engines.diffusion import engine as engine_module  # noqa: E402
from segue.engines.diffusion.ends import EndsSettings  # noqa: E402
from segue.engines.diffusion.ltx2 import DISTILLED_SIGMAS, frame_indices  # noqa: E402
from segue.errors import InvalidParameter, SegueError  # noqa: E402
from segue.media.video import VideoEncoder, psnr, read_frames  # noqa: E402
from tests.conftest import scene  # noqa: E402

BACKENDS = {
    "ltx": {"family": "ltx"},
    "ltx2": {"family": "ltx2"},
    "wan21": {"family": "wan", "variant": "flf2v"},
    "wan22": {"family": "wan", "variant": "i2v"},
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {kind: str(save_tiny(kind, root / kind)) for kind in (*BACKENDS, "wan22-ti2v")}


def make(models, kind: str, **options):
    return create_engine("diffusion", {**BACKENDS.get(kind, {}), "model": models[kind],
                                       "steps": 2, **options})


@pytest.fixture(scope="module")
def ltx2(models):
    engine = make(models, "ltx2")
    engine.load()
    return engine


def calls_of(monkeypatch, pipe) -> list[dict]:
    """The keyword arguments of every call of ``pipe`` (Python calls the class's method)."""
    seen: list[dict] = []
    original = type(pipe).__call__
    monkeypatch.setattr(type(pipe), "__call__",
                        lambda self, **kw: seen.append(kw) or original(self, **kw))
    return seen


def test_ltx2_puts_the_first_keyframe_at_index_0_and_the_last_at_minus_1(ltx2, monkeypatch):
    seen = calls_of(monkeypatch, ltx2.pipe)
    video = render(ltx2, job())
    assert video.shape == (FRAMES, SIZE, SIZE, 3) and video.dtype == np.uint8
    (kwargs,) = seen
    first, last = keyframes()
    assert [c.index for c in kwargs["conditions"]] == [0, -1]
    assert np.array_equal(np.asarray(kwargs["conditions"][0].frames), first)
    assert np.array_equal(np.asarray(kwargs["conditions"][1].frames), last)
    # Two steps asked: the 8-value distilled schedule does not fit and is dropped.
    assert kwargs["num_inference_steps"] == 2 and "sigmas" not in kwargs
    assert kwargs["num_frames"] == FRAMES and kwargs["frame_rate"] == 24.0
    assert kwargs["stg_scale"] == 0.0 and kwargs["guidance_scale"] == 1.0  # distilled: no CFG


def test_ltx2_distilled_schedule_and_the_full_variant(models, monkeypatch):
    distilled = make(models, "ltx2", steps=None)
    assert distilled.sampling["sigmas"] == DISTILLED_SIGMAS and distilled.sampling["steps"] == 8
    stg = {"spatio_temporal_guidance_blocks": [1]}  # the tiny transformer has 2 blocks
    full = make(models, "ltx2", variant="full", call_options=stg)
    assert full.sampling == {"steps": 2, "guidance_scale": 3.0}
    seen = calls_of(monkeypatch, full.load() or full.pipe)
    assert render(full, job(seed=2)).shape == (FRAMES, SIZE, SIZE, 3)
    assert seen[0]["guidance_scale"] == 3.0 and seen[0]["spatio_temporal_guidance_blocks"] == [1]
    assert "negative_prompt" in seen[0]  # guidance on: the negative prompt is used


def test_ltx2_makes_sound_only_when_asked(ltx2):
    assert ltx2.makes_audio and not create_engine("blend").makes_audio
    quiet = job()
    render(ltx2, quiet)
    assert quiet.audio is None
    loud = job(generate_audio=True)
    render(ltx2, loud)
    track = loud.audio
    assert track is not None and track.rate == 8000 and track.samples.dtype == np.float32
    assert track.samples.shape[0] == 2
    assert track.samples.shape[1] == pytest.approx(FRAMES / 24 * 8000, rel=0.1)
    assert np.abs(track.samples).max() > 0


def test_ltx2_upscaler_renders_half_size_upsamples_and_refines_video_and_audio(
        models, tmp_path, monkeypatch):
    upsampler = str(save_tiny_ltx2_upsampler(tmp_path / "up"))
    engine = make(models, "ltx2", upscaler=upsampler)
    engine.load()
    seen = calls_of(monkeypatch, engine.pipe)
    task = job(generate_audio=True)
    video = render(engine, task)
    assert video.shape == (FRAMES, SIZE, SIZE, 3) and task.audio is not None
    low, high = seen
    assert (low["width"], low["height"], high["width"], high["height"]) == (32, 32, 64, 64)
    assert high["latents"].shape[-2:] == (32, 32)  # 32 px / 2 (the tiny VAE), upsampled 2x
    assert high["audio_latents"] is not None and high["noise_scale"] == 0.909375
    assert high["sigmas"] == [0.909375, 0.725, 0.421875] and high["guidance_scale"] == 1.0
    assert [c.index for c in high["conditions"]] == [0, -1]
    assert {"denoise", "upsample", "refine"} <= set(engine.timer.seconds)
    assert engine.upscale.adain == 0.0 and engine.upscale.base_scale == 0.5
    with pytest.raises(ValueError, match="do not apply to ltx2"):
        make(models, "ltx2", upscaler=upsampler, upscale_steps=4)


def test_ltx2_thins_an_over_rendered_clip_evenly_keeping_both_ends():
    assert frame_indices(33, 29) == [round(i * 32 / 28) for i in range(29)]
    assert frame_indices(33, 29)[0] == 0 and frame_indices(33, 29)[-1] == 32
    assert frame_indices(49, 49) == list(range(49)) and frame_indices(9, 1) == [0]


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_every_backend_starts_and_ends_on_the_keyframes_after_encoding(models, kind, tmp_path):
    side = 32  # the smallest size every tiny VAE takes: the Wan VAE is slow on the CPU
    first, last = scene(side, side), scene(side, side, shift=5, seed=1)  # photo-like
    path = tmp_path / f"{kind}.mp4"
    engine = make(models, kind)
    task = job(first=first, last=last, width=side, height=side)
    with VideoEncoder(path, side, side, FRAMES) as encoder:
        for frame in engine.render(task):
            encoder.write(frame)
    decoded = read_frames(path)
    assert len(decoded) == FRAMES
    assert psnr(decoded[0], first) >= 30 and psnr(decoded[-1], last) >= 30
    engine.ends = EndsSettings("model")
    raw = render(engine, job(first=first, last=last, width=side, height=side))
    assert psnr(raw[-1], last) < 30  # what the random model alone gives


def test_ends_cross_fade_into_the_model_frames(models):
    blended = render(make(models, "ltx", ends_frames=3), job())
    raw = render(make(models, "ltx", ends="model"), job())
    first, last = keyframes()
    assert np.array_equal(blended[0], first) and np.array_equal(blended[-1], last)
    middle = FRAMES // 2
    assert np.array_equal(blended[middle], raw[middle])  # untouched away from the ends
    d1 = np.abs(blended[1].astype(int) - first).mean()
    d2 = np.abs(blended[2].astype(int) - first).mean()
    assert 0 < d1 < d2  # the keyframe's share falls off frame by frame
    with pytest.raises(ValueError, match="ends must be"):
        make(models, "ltx", ends="paste")


def test_wan22_ti2v_renders_from_a_first_frame_and_refuses_a_last_one(models):
    engine = make(models, "wan22-ti2v", family="wan", variant="ti2v")
    assert engine.modes == {Mode.FIRST_FRAME}
    assert render(engine, job(Mode.FIRST_FRAME)).shape == (FRAMES, SIZE, SIZE, 3)
    with pytest.raises(InvalidParameter, match="first-and-last-frame"):
        list(engine.render(job()))
    misnamed = make(models, "wan22-ti2v", family="wan", variant="i2v")  # registry mistake
    with pytest.raises(InvalidParameter, match="cannot take a last frame"):
        list(misnamed.render(job()))


def out_of_memory(*args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_in_the_vae_decode_fails_the_render_and_the_next_one_works(
        ltx2, monkeypatch):
    monkeypatch.setattr(ltx2.pipe.vae, "decode", out_of_memory)
    with pytest.raises(SegueError, match="ran out of memory rendering 64x64") as info:
        list(ltx2.render(job()))
    assert not isinstance(info.value, EngineFault) and info.value.code == "InternalServiceError"
    monkeypatch.undo()
    assert render(ltx2, job()).shape[0] == FRAMES


def test_out_of_memory_as_a_runtime_error_in_the_denoiser(ltx2, monkeypatch):
    def old_style(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ltx2.pipe.transformer, "forward", old_style)
    with pytest.raises(SegueError, match="ran out of memory"):
        list(ltx2.render(job()))


def test_a_lost_cuda_context_or_a_leak_is_an_engine_fault(ltx2, monkeypatch):
    def illegal(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(ltx2.pipe.transformer, "forward", illegal)
    with pytest.raises(EngineFault, match="illegal memory access.*worker restarts"):
        list(ltx2.render(job()))
    monkeypatch.setattr(ltx2.pipe.transformer, "forward", out_of_memory)
    # Memory still held after the clean-up (a reference kept somewhere): restart.
    monkeypatch.setattr(engine_module, "allocated_bytes", lambda: 3 * 2**30)
    with pytest.raises(EngineFault, match="3.0 GiB could not be freed"):
        list(ltx2.render(job()))


def test_other_errors_are_not_swallowed(ltx2, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(ltx2.pipe.transformer, "forward", broken)
    with pytest.raises(ValueError, match="a bug"):
        list(ltx2.render(job()))


def test_vae_tiling_decodes_in_tiles_when_asked(models, monkeypatch):
    engine = make(models, "ltx", vae_tiling=True)
    engine.load()
    tiled = spy(monkeypatch, engine.pipe.vae, "enable_tiling")
    assert render(engine, job()).shape == (FRAMES, SIZE, SIZE, 3)
    assert tiled and engine.pipe.vae.use_tiling and engine.pipe.vae.use_framewise_decoding
    auto = make(models, "ltx")
    auto.load()
    auto._set_tiling(1920, 1088)
    assert auto.pipe.vae.use_tiling
    auto._set_tiling(1280, 720)
    assert not auto.pipe.vae.use_tiling


def test_engine_import_stays_free_of_torch():
    import subprocess
    import sys

    code = ("import sys, segue.engines.diffusion, segue.worker; "
            "print('torch' in sys.modules, 'diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr
