"""The diffusion engine through the real server, worker and encoder (tiny random models)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import av
import httpx
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402
from tiny_pipelines import save_tiny  # noqa: E402

from segue.media.images import fit_to  # noqa: E402
from segue.media.video import probe, psnr, read_frames  # noqa: E402
from tests.conftest import (  # noqa: E402
    KEY,
    TASKS,
    ark_task,
    data_url,
    make_settings,
    scene,
    start_server,
)


def registry(tmp_path: Path, entries: list[tuple[str, str, dict, list[str]]]) -> Path:
    """A models file: (id, tiny model kind, engine options, modes) per entry."""
    models = []
    for model_id, kind, options, modes in entries:
        folder = tmp_path / "models" / kind
        if not folder.exists():
            save_tiny(kind, folder)
        models.append({"id": model_id, "engine": "diffusion", "tier": "pro",
                       "resolution": "480p", "modes": modes,
                       "options": {**options, "steps": 2, "model": kind,
                                   "models_dir": str(tmp_path / "models")}})
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": models}))
    return path


def test_a_task_renders_through_the_worker(tmp_path: Path) -> None:
    """LTX with the real VAE's 32x/8x compression keeps 480p cheap on a CPU; the Wan VAE's
    full-resolution 3D convolutions take about a minute there, so Wan is covered at small
    sizes by test_diffusion.py."""
    models = registry(tmp_path, [("segue-ltx-480p", "ltx-480p", {"family": "ltx"},
                                  ["first_frame", "first_last_frame"])])
    server = start_server(make_settings(tmp_path / "data", models_file=models))
    try:
        with server.client() as c:
            modes = c.get("/api/v3/models").json()["data"][0]["modes"]
            assert "first_last_frame" in modes
            r = c.post(TASKS, json=ark_task("segue-ltx-480p", "a red kite --dur 2 --seed 3", 30))
            assert r.status_code == 200, r.text
        body = server.wait(r.json()["id"], timeout=240)
        assert body["status"] == "succeeded", body
        assert body["generate_audio"] is False  # silent: the task object says so
        out = tmp_path / "out.mp4"
        out.write_bytes(httpx.get(body["content"]["video_url"]).content)
    finally:
        server.stop()
    assert body["usage"]["total_tokens"] == 864 * 480 * 49 // 1024
    info = probe(out)
    assert (info.width, info.height, info.frames, info.fps) == (864, 480, 49, 24)
    with av.open(str(out)) as container:
        assert not container.streams.audio  # no sound asked, none made


SEEDANCE_15 = "seedance-1-5-pro-251215"  # mapped to LTX-2 by the operator's registry


def test_ltx2_with_sound_survives_an_out_of_memory_task_and_refuses_what_it_cannot(
        tmp_path: Path) -> None:
    models = registry(tmp_path, [
        (SEEDANCE_15, "ltx2-480p", {"family": "ltx2"},
         ["text", "first_frame", "first_last_frame"]),
        ("segue-wan-ti2v", "wan22-ti2v", {"family": "wan", "variant": "ti2v"},
         ["first_frame", "first_last_frame"]),
    ])
    server = start_server(make_settings(tmp_path / "data", models_file=models))
    services = server.services
    engine = services.engine_for(services.models.get(SEEDANCE_15), load=True)
    try:
        with server.client() as c:
            # TI2V-5B cannot take a last frame: refused before a task exists.
            r = c.post(TASKS, json=ark_task("segue-wan-ti2v", "a kite --dur 2", 30))
            assert r.status_code == 400 and "first-and-last-frame" in r.text, r.text
            r = c.post(TASKS, json={**ark_task("segue-wan-ti2v", "a kite --dur 2", 30),
                                    "generate_audio": True})
            assert r.status_code == 400, r.text
            # The GPU runs out of memory in the first task ...
            original = engine.pipe.transformer.forward

            def exhausted(*args: object, **kwargs: object) -> None:
                engine.pipe.transformer.forward = original  # only this once
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB")

            engine.pipe.transformer.forward = exhausted
            oom = c.post(TASKS, json=ark_task(SEEDANCE_15, "a kite --dur 2 --seed 3", 30))
            assert oom.status_code == 200, oom.text
            failed = server.wait(oom.json()["id"], timeout=240)
            # ... and the same worker renders the next one, with sound.
            r = c.post(TASKS, json={**ark_task(SEEDANCE_15, "a kite --dur 2 --seed 3", 30),
                                    "generate_audio": True})
            assert r.status_code == 200, r.text
        body = server.wait(r.json()["id"], timeout=300)
        out = tmp_path / "out.mp4"
        out.write_bytes(httpx.get(body["content"]["video_url"]).content)
    finally:
        server.stop()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "InternalServiceError"
    assert "ran out of memory rendering 864x480, 49 frames" in failed["error"]["message"]
    assert body["status"] == "succeeded" and body["generate_audio"] is True, body
    check_sound_and_ends(out)


def check_sound_and_ends(out: Path) -> None:
    """An AAC track as long as the video; first and last frames on the inputs."""
    with av.open(str(out)) as container:
        video, (audio,) = container.streams.video[0], container.streams.audio
        assert audio.codec_context.name == "aac" and audio.sample_rate == 48_000
        counted = video.frames  # read while open: PyAV 18 refuses a closed container's
        samples = sum(frame.samples for frame in container.decode(audio))
    assert counted == 49 or probe(out).frames == 49
    assert abs(samples / 48_000 - 49 / 24) <= 2048 / 48_000  # within the encoder's padding
    frames = read_frames(out)
    first = fit_to(Image.fromarray(scene(640, 360)), 864, 480)
    last = fit_to(Image.fromarray(scene(640, 360, 30)), 864, 480)
    assert psnr(frames[0], first) >= 30 and psnr(frames[-1], last) >= 30


def test_a_gpu_fault_fails_the_task_and_restarts_the_worker_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost CUDA context cannot be cleaned up in-process: the task fails clearly, the
    worker stops claiming, and the process is told to stop (SIGTERM in production, where
    ``segue worker`` then exits 70 for its supervisor to restart it)."""
    import segue.worker

    stopped = threading.Event()
    monkeypatch.setattr(segue.worker, "terminate_process", stopped.set)
    models = registry(tmp_path, [("segue-ltx", "ltx-480p", {"family": "ltx"},
                                  ["first_last_frame"])])
    server = start_server(make_settings(tmp_path / "data", models_file=models))
    engine = server.services.engine_for(server.services.models.get("segue-ltx"), load=True)

    def illegal(*args: object, **kwargs: object) -> None:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    engine.pipe.transformer.forward = illegal
    try:
        with server.client() as c:
            first = c.post(TASKS, json=ark_task("segue-ltx", "a kite --dur 2", 30)).json()["id"]
            body = server.wait(first, timeout=240)
            assert stopped.wait(30)
            second = c.post(TASKS, json=ark_task("segue-ltx", "a kite --dur 2", 30)).json()["id"]
            later = c.get(f"{TASKS}/{second}").json()
    finally:
        server.stop()
    assert body["status"] == "failed" and body["error"]["code"] == "InternalServiceError"
    assert "illegal memory access" in body["error"]["message"]
    assert "worker restarts" in body["error"]["message"]
    assert later["status"] == "queued"  # this process claims no more work


LAUNCH_WITH_A_LOST_GPU = """
import runpy, sys
import diffusers

def lost(self, *args, **kwargs):
    raise RuntimeError("CUDA error: an illegal memory access was encountered")

diffusers.LTXConditionPipeline.__call__ = lost
sys.argv = ["segue", "worker"]
runpy.run_module("segue", run_name="__main__")
"""


def test_segue_worker_exits_70_after_a_gpu_fault(tmp_path: Path) -> None:
    """The real process: the GPU fails (injected into the pipeline class before the CLI
    starts), the task ends failed and ``segue worker`` exits 70 for its supervisor."""
    import os
    import subprocess
    import sys

    models = registry(tmp_path, [("segue-ltx", "ltx-480p", {"family": "ltx"},
                                  ["first_last_frame"])])
    settings = make_settings(tmp_path / "data", models_file=models)
    server = start_server(settings, workers=0)  # the API only; the worker is the process
    env = dict(os.environ, SEGUE_DATA_DIR=str(tmp_path / "data"), SEGUE_MODELS_FILE=str(models),
               SEGUE_POLL_INTERVAL="0.1", SEGUE_LOG_LEVEL="warning")
    try:
        with server.client() as c:
            task = c.post(TASKS, json=ark_task("segue-ltx", "a kite --dur 2", 30)).json()["id"]
        worker = subprocess.run([sys.executable, "-c", LAUNCH_WITH_A_LOST_GPU], env=env,
                                cwd=Path(__file__).parents[2], capture_output=True, text=True,
                                timeout=240)
        body = server.wait(task, timeout=30)
    finally:
        server.stop()
    assert worker.returncode == 70, worker.stderr[-2000:]
    assert body["status"] == "failed" and "illegal memory access" in body["error"]["message"]


def test_an_exact_size_the_network_cannot_render_is_refused_at_create(tmp_path: Path) -> None:
    """LTX works on 32 px blocks: /v1/videos refuses 648x360 before storing a task."""
    models = registry(tmp_path, [("segue-ltx-480p", "ltx-480p", {"family": "ltx"},
                                  ["first_frame", "first_last_frame"])])
    server = start_server(make_settings(tmp_path / "data", models_file=models), workers=0)
    try:
        first = data_url(scene(640, 360))
        with httpx.Client(base_url=server.url, timeout=30,
                          headers={"Authorization": f"Bearer {KEY}"}) as c:
            r = c.post("/v1/videos", json={"model": "segue-ltx-480p", "prompt": "a pan",
                                           "size": "648x360", "input_reference": first})
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert error["param"] == "size" and "multiples of 32" in error["message"]
            models_listed = c.get("/v1/videos/models").json()["data"]
            rules = next(m for m in models_listed if m["id"] == "segue-ltx-480p")["size_rules"]
            assert rules["multiple_of"] == 32
            assert c.get(TASKS).json()["total"] == 0  # nothing was stored
    finally:
        server.stop()
