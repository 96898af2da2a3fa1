"""The diffusion engine on tiny random LTX and Wan pipelines, fully offline, on the CPU.

The pipelines are real diffusers classes saved in the diffusers folder layout and loaded
by the engine the way a worker loads real weights; only their size is tiny.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from tiny_pipelines import save_tiny, save_tiny_upsampler  # noqa: E402

from segue.domain import Mode  # noqa: E402
from segue.engines.base import RenderJob, create_engine  # noqa: E402
from segue.engines.diffusion import CAMERA_FIXED_INSTRUCTION, prompt_for  # noqa: E402
from segue.engines.diffusion import ltx as _ltx  # noqa: E402
from segue.errors import (  # noqa: E402
    InvalidParameter,
    ModelNotOpen,
    SegueError,
    TaskInterrupted,
)

SIZE, FRAMES = 64, 9


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    paths = {kind: str(save_tiny(kind, root / kind)) for kind in ("ltx", "wan21", "wan22")}
    paths["upsampler"] = str(save_tiny_upsampler(root / "upsampler"))
    return paths


@pytest.fixture(scope="module")
def ltx(models):
    engine = create_engine("diffusion", {"family": "ltx", "model": models["ltx"], "steps": 2})
    engine.load()
    return engine


@pytest.fixture(scope="module")
def wan21(models):
    options = {"family": "wan", "variant": "flf2v", "model": models["wan21"], "steps": 2}
    return create_engine("diffusion", options)


def keyframes(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright disc on dark at the start; its negative at the end."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    disc = ((yy - 20) ** 2 + (xx - 24) ** 2 < 150)[..., None]
    base = np.random.default_rng(seed).integers(0, 60, (SIZE, SIZE, 3))
    first = np.where(disc, [230, 200, 40], base).astype(np.uint8)
    return first, (255 - first).astype(np.uint8)


def job(mode: Mode = Mode.FIRST_LAST, seed: int = 7, frames: int = FRAMES, **kw) -> RenderJob:
    first, last = keyframes()
    images = {
        Mode.FIRST_LAST: {"first": first, "last": last},
        Mode.FIRST_FRAME: {"first": first},
    }.get(mode, {})
    fields = {"prompt": "a red cat walks", "width": SIZE, "height": SIZE, **images, **kw}
    return RenderJob(mode=mode, frames=frames, seed=seed, **fields)


def render(engine, job_: RenderJob) -> np.ndarray:
    return np.stack(list(engine.render(job_)))


def spy(monkeypatch, obj, attr: str) -> list:
    """Record the arguments of ``obj.attr`` while still calling it."""
    calls: list = []
    original = getattr(obj, attr)

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, attr, recording)
    return calls


def test_ltx_first_last_gives_the_asked_frames_and_conditions_on_both_keyframes(
    ltx, monkeypatch
):
    images = spy(monkeypatch, ltx.pipe.video_processor, "preprocess")
    latents = spy(monkeypatch, ltx.pipe, "prepare_latents")
    video = render(ltx, job())
    assert video.shape == (FRAMES, SIZE, SIZE, 3) and video.dtype == np.uint8
    first, last = keyframes()
    passed = [np.asarray(args[0]) for args, _ in images]
    assert len(passed) == 2
    assert np.array_equal(passed[0], first) and np.array_equal(passed[1], last)
    frame_index = latents[0][0][2]
    assert frame_index == [0, FRAMES - 1]


def test_ltx_same_seed_same_video_and_the_keyframes_change_it(ltx):
    a = render(ltx, job(seed=3))
    assert np.array_equal(a, render(ltx, job(seed=3)))
    assert not np.array_equal(a, render(ltx, job(seed=4)))
    first, last = keyframes()
    swapped = render(ltx, job(seed=3, first=last, last=first))
    assert np.abs(a.astype(int) - swapped.astype(int)).mean() > 1.0


def test_ltx_text_and_first_frame_modes(ltx, monkeypatch):
    images = spy(monkeypatch, ltx.pipe.video_processor, "preprocess")
    assert render(ltx, job(Mode.TEXT)).shape == (FRAMES, SIZE, SIZE, 3)
    assert images == []
    assert render(ltx, job(Mode.FIRST_FRAME)).shape == (FRAMES, SIZE, SIZE, 3)
    assert len(images) == 1
    with pytest.raises(InvalidParameter, match="reference-image"):
        list(ltx.render(job(Mode.REFERENCE, references=[keyframes()[0]])))


def test_ltx_pads_frame_counts_to_its_vae_and_keeps_the_last_keyframe_last(ltx, monkeypatch):
    latents = spy(monkeypatch, ltx.pipe, "prepare_latents")
    video = render(ltx, job(frames=11))  # the tiny VAE needs 4k+1 frames: renders 13
    assert video.shape[0] == 11
    assert latents[0][0][2] == [0, 10]
    assert latents[0][1]["num_frames"] == 13
    with pytest.raises(InvalidParameter, match="multiples of 4"):
        list(ltx.render(job(width=66)))


def test_progress_per_step_and_cancel_stops_at_a_step_boundary(models):
    engine = create_engine("diffusion", {"family": "ltx", "model": models["ltx"], "steps": 3})
    steps_run: list[int] = []
    engine.load()
    engine.pipe.transformer.register_forward_pre_hook(lambda *a: steps_run.append(1))
    seen: list[float] = []
    video = render(engine, job(progress=seen.append))
    denoise = [f for f in seen if 0 < f <= 0.9]
    assert denoise == pytest.approx([0.3, 0.6, 0.9]) and len(steps_run) == 3
    assert seen[-1] == pytest.approx(1.0) and video.shape[0] == FRAMES

    def cancel_after_two_steps(fraction: float) -> None:
        if fraction >= 0.6:
            raise TaskInterrupted("cancelled")

    steps_run.clear()
    with pytest.raises(TaskInterrupted):
        list(engine.render(job(progress=cancel_after_two_steps)))
    assert len(steps_run) == 2
    pipe = engine.pipe
    assert render(engine, job()).shape[0] == FRAMES and engine.pipe is pipe  # still loaded


def test_prompt_goes_to_the_text_encoder_with_the_camera_instruction(ltx, monkeypatch):
    calls = spy(monkeypatch, ltx.pipe, "encode_prompt")
    render(ltx, job(camera_fixed=True, prompt="  a dog runs  "))
    assert calls[0][1]["prompt"] == f"a dog runs {CAMERA_FIXED_INSTRUCTION}"
    assert prompt_for(job(prompt="sky")) == "sky"


def test_stage_timings_cover_every_stage(ltx):
    render(ltx, job())
    stages = set(ltx.timer.seconds)
    assert {"text_encode", "vae_encode", "denoise", "vae_decode", "to_frames"} <= stages
    assert len(ltx.timer.steps) == 2 and all(s >= 0 for s in ltx.timer.seconds.values())


def test_wan21_flf2v_passes_first_and_last_image_and_is_reproducible(wan21, monkeypatch):
    clip = spy(monkeypatch, wan21, "load")  # lazily loaded on the first render
    a = render(wan21, job())
    assert clip and a.shape == (FRAMES, SIZE, SIZE, 3) and a.dtype == np.uint8
    encoded = spy(monkeypatch, wan21.pipe, "encode_image")
    b = render(wan21, job())
    assert np.array_equal(a, b)
    first, last = keyframes()
    pair = encoded[0][0][0]
    assert np.array_equal(np.asarray(pair[0]), first) and np.array_equal(np.asarray(pair[1]), last)


def test_wan21_flf2v_refuses_modes_and_sizes_it_cannot_render(wan21):
    with pytest.raises(InvalidParameter, match="first-frame"):
        list(wan21.render(job(Mode.FIRST_FRAME)))
    with pytest.raises(InvalidParameter, match="4k\\+1"):
        list(wan21.render(job(frames=11)))
    with pytest.raises(InvalidParameter, match="multiples of 16"):
        list(wan21.render(job(height=72)))


def test_wan22_i2v_renders_first_frame_and_first_last(models, monkeypatch):
    options = {"family": "wan", "variant": "i2v", "model": models["wan22"], "steps": 2}
    engine = create_engine("diffusion", options)
    assert engine.modes == {Mode.FIRST_FRAME, Mode.FIRST_LAST}
    engine.load()
    latents = spy(monkeypatch, engine.pipe, "prepare_latents")
    assert render(engine, job(Mode.FIRST_FRAME)).shape == (FRAMES, SIZE, SIZE, 3)
    assert render(engine, job()).shape == (FRAMES, SIZE, SIZE, 3)
    assert latents[0][0][10] is None and latents[1][0][10] is not None  # last_image


def test_models_dir_and_missing_models_are_clear_errors(models, tmp_path, monkeypatch):
    root = tmp_path / "weights"
    (root / "acme").mkdir(parents=True)
    (root / "acme" / "tiny-ltx").symlink_to(models["ltx"])
    monkeypatch.setenv("SEGUE_MODELS_DIR", str(root))
    engine = create_engine("diffusion", {"family": "ltx", "model": "acme/tiny-ltx", "steps": 2})
    engine.load()
    assert engine.pipe is not None
    missing = create_engine(
        "diffusion", {"family": "ltx", "model": "acme/absent", "local_only": True}
    )
    with pytest.raises(ModelNotOpen, match="acme/absent.*model_index.json"):
        missing.load()
    with pytest.raises(ModelNotOpen, match="not found"):
        create_engine("diffusion", {"family": "wan", "model": str(tmp_path / "none")}).load()
    with pytest.raises(ValueError, match="variant"):
        create_engine("diffusion", {"family": "wan", "model": "x", "variant": "turbo"})


def test_out_of_memory_fails_the_task_clearly_and_the_engine_keeps_serving(ltx, monkeypatch):
    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(ltx.pipe.transformer, "forward", exhausted)
    with pytest.raises(SegueError, match="ran out of memory") as info:
        list(ltx.render(job()))
    assert info.value.code == "InternalServiceError" and info.value.status == 500
    monkeypatch.undo()
    assert render(ltx, job()).shape[0] == FRAMES


# -- the latent upscaler stage (LTX 0.9.7/0.9.8 recipe) ---------------------------------------

UPSCALED = {"upscale_steps": 4, "upscale_strength": 0.5}  # 2 first-pass + 2 refine steps


@pytest.fixture(scope="module")
def ltx_up(models):
    options = {"family": "ltx", "model": models["ltx"], "steps": 2,
               "upscaler": models["upsampler"], **UPSCALED}
    engine = create_engine("diffusion", options)
    engine.load()
    return engine


def test_upscaler_renders_low_res_upsamples_refines_and_fits_the_size(ltx_up, monkeypatch):
    upsampled = spy(monkeypatch, ltx_up.upscale.pipe.latent_upsampler, "forward")
    latents = spy(monkeypatch, ltx_up.pipe, "prepare_latents")
    seen: list[float] = []
    video = render(ltx_up, job(progress=seen.append))
    assert video.shape == (FRAMES, SIZE, SIZE, 3) and video.dtype == np.uint8
    assert len(upsampled) == 1 and upsampled[0][0][0].shape[-2:] == (8, 8)  # 32 px / 4
    (low_args, low), (high_args, high) = latents
    assert (low["height"], low["width"], high["height"], high["width"]) == (32, 32, 64, 64)
    assert low_args[2] == high_args[2] == [0, FRAMES - 1]  # both keyframes in both passes
    assert low["latents"] is None and high["latents"].shape[-2:] == (16, 16)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert [f for f in seen if 0 < f <= 0.9] == pytest.approx([0.225, 0.45, 0.675, 0.9])
    assert {"denoise", "upsample", "refine", "vae_decode", "resize"} <= set(ltx_up.timer.seconds)
    assert len(ltx_up.timer.steps) == 4
    wide = render(ltx_up, job(Mode.TEXT, width=96))  # 64x32 -> 128x64 -> resized to 96x64
    assert wide.shape == (FRAMES, SIZE, 96, 3)


def test_upscaler_is_reproducible_and_differs_from_the_single_pass(ltx_up, ltx):
    a = render(ltx_up, job(seed=3))
    assert np.array_equal(a, render(ltx_up, job(seed=3)))
    assert not np.array_equal(a, render(ltx_up, job(seed=4)))
    assert not np.array_equal(a, render(ltx, job(seed=3)))


def test_cancel_during_the_refine_pass_stops_at_its_step_boundary(ltx_up):
    forwards: list[int] = []
    hook = ltx_up.pipe.transformer.register_forward_pre_hook(lambda *a: forwards.append(1))
    upsampled: list[int] = []
    up_hook = ltx_up.upscale.pipe.latent_upsampler.register_forward_pre_hook(
        lambda *a: upsampled.append(1))

    def cancel_in_the_refine_pass(fraction: float) -> None:
        if fraction > 0.5:  # the first refine step reports 0.675
            raise TaskInterrupted("cancelled")

    try:
        with pytest.raises(TaskInterrupted):
            list(ltx_up.render(job(progress=cancel_in_the_refine_pass)))
    finally:
        hook.remove()
        up_hook.remove()
    assert len(forwards) == 3 and len(upsampled) == 1  # 2 first-pass steps + 1 refine step
    assert render(ltx_up, job()).shape[0] == FRAMES  # still serving


def test_upscaler_weights_resolve_like_models_and_fail_clearly(models, tmp_path, monkeypatch):
    root = tmp_path / "weights"
    root.mkdir()
    (root / "tiny-ltx").symlink_to(models["ltx"])
    save_tiny_upsampler(root / "acme" / "upscaler", pipeline_layout=True)
    monkeypatch.setenv("SEGUE_MODELS_DIR", str(root))
    options = {"family": "ltx", "model": "tiny-ltx", "local_only": True}
    engine = create_engine("diffusion", {**options, "upscaler": "acme/upscaler"})
    engine.load()
    assert engine.upscale.pipe.vae is engine.pipe.vae
    missing = create_engine("diffusion", {**options, "upscaler": "acme/absent"})
    with pytest.raises(ModelNotOpen, match="latent upscaler 'acme/absent'.*not found"):
        missing.load()
    assert missing.pipe is None  # refused before loading the large model
    with pytest.raises(ValueError, match="ltx and ltx2 families only"):
        create_engine("diffusion", {"family": "wan", "model": "x", "upscaler": "y"})
    with pytest.raises(ValueError, match="upscale_strength"):
        create_engine("diffusion", {**options, "upscaler": "y", "upscale_strength": 1.0})


def test_upscaler_schedules_and_sizes_follow_the_published_recipe():
    distilled = _ltx.upscale_settings("distilled", "up")
    assert distilled.timesteps == (1000, 909, 725, 421, 0) and distilled.refine_steps == 4
    assert _ltx.upscale_settings("dev", "up").refine_steps == 4  # 10 steps at strength 0.4
    assert _ltx.upscale_settings("distilled", "up", steps=6).timesteps is None
    assert _ltx.upscale_settings("dev", None) is None
    sizes = {(w, h): _ltx.low_res_size(job(width=w, height=h), distilled)
             for w, h in [(1152, 768), (1280, 720), (864, 480), (1920, 1088)]}
    assert sizes == {(1152, 768): (768, 512), (1280, 720): (864, 480),
                     (864, 480): (576, 320), (1920, 1088): (1280, 736)}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_on_cuda_renders_and_is_reproducible(models):
    engine = create_engine("diffusion", {"family": "ltx", "model": models["ltx"], "steps": 2})
    engine.load()
    assert engine.pipe.transformer.dtype == torch.bfloat16
    assert engine.pipe.device.type == "cuda"
    a = render(engine, job(seed=5))
    assert a.shape == (FRAMES, SIZE, SIZE, 3)
    assert np.array_equal(a, render(engine, job(seed=5)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_upscaler_on_cuda_renders_and_is_reproducible(models):
    options = {"family": "ltx", "model": models["ltx"], "steps": 2,
               "upscaler": models["upsampler"], **UPSCALED}
    engine = create_engine("diffusion", options)
    engine.load()
    upsampler = engine.upscale.pipe.latent_upsampler
    assert upsampler.dtype == torch.bfloat16 and upsampler.device.type == "cuda"
    a = render(engine, job(seed=5))
    assert a.shape == (FRAMES, SIZE, SIZE, 3)
    assert np.array_equal(a, render(engine, job(seed=5)))


def test_ltx_conditions_a_storyboard_on_each_keyframe_at_its_frame_index(ltx, monkeypatch):
    images = spy(monkeypatch, ltx.pipe.video_processor, "preprocess")
    latents = spy(monkeypatch, ltx.pipe, "prepare_latents")
    first, last = keyframes()
    middle = [(5, keyframes(seed=1)[0][:, ::-1].copy()), (11, keyframes(seed=2)[1])]
    video = render(ltx, job(frames=17, keyframes=middle))
    assert video.shape == (17, SIZE, SIZE, 3)
    passed = [np.asarray(args[0]) for args, _ in images]
    expected = [first, middle[0][1], middle[1][1], last]
    assert len(passed) == 4
    assert all(np.array_equal(p, e) for p, e in zip(passed, expected, strict=True))
    assert latents[0][0][2] == [0, 5, 11, 16]
    # the ends' blend puts each keyframe on its own frame, and only there
    for index, image in middle:
        assert np.array_equal(video[index], image)
        assert not np.array_equal(video[index - 1], image)
    assert ltx.max_keyframes == _ltx.MAX_KEYFRAMES > 2
