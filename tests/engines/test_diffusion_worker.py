"""The diffusion engine through the real server, worker and encoder (tiny random models)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tiny_pipelines import save_tiny  # noqa: E402

from segue.media.video import probe  # noqa: E402
from tests.conftest import TASKS, ark_task, make_settings, start_server  # noqa: E402


def test_a_task_renders_through_the_worker(tmp_path: Path) -> None:
    """LTX with the real VAE's 32x/8x compression keeps 480p cheap on a CPU; the Wan VAE's
    full-resolution 3D convolutions take about a minute there, so Wan is covered at small
    sizes by test_diffusion.py."""
    kind, options = "ltx-480p", {"family": "ltx", "steps": 2}
    save_tiny(kind, tmp_path / "models" / kind)
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": [{
        "id": f"segue-{kind}", "engine": "diffusion", "tier": "pro", "resolution": "480p",
        "modes": ["first_frame", "first_last_frame"],
        "options": {**options, "model": kind, "models_dir": str(tmp_path / "models")},
    }]}))
    server = start_server(make_settings(tmp_path / "data", models_file=models))
    try:
        with server.client() as c:
            modes = c.get("/api/v3/models").json()["data"][0]["modes"]
            assert "first_last_frame" in modes
            r = c.post(TASKS, json=ark_task(f"segue-{kind}", "a red kite --dur 2 --seed 3", 30))
            assert r.status_code == 200, r.text
        body = server.wait(r.json()["id"], timeout=240)
        assert body["status"] == "succeeded", body
        out = tmp_path / "out.mp4"
        out.write_bytes(httpx.get(body["content"]["video_url"]).content)
    finally:
        server.stop()
    assert body["usage"]["total_tokens"] == 864 * 480 * 49 // 1024
    info = probe(out)
    assert (info.width, info.height, info.frames, info.fps) == (864, 480, 49, 24)
