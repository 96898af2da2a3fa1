"""``segue generate --keyframe TIME=IMAGE`` and ``segue submit --keyframe``: storyboards from
the command line, run as real processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from segue.media.images import fit_to
from segue.media.video import psnr, read_frames
from tests.cli.test_cli_generate import piped, remote_env
from tests.conftest import KEY, LiveServer, make_settings, scene, start_server

TASKS = "/api/v3/contents/generations/tasks"


@pytest.fixture(scope="module")
def stops(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("stops")
    paths = []
    for k in range(3):
        path = folder / f"stop{k}.png"
        Image.fromarray(scene(640, 360, shift=12 * k, seed=k)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(make_settings(tmp_path_factory.mktemp("cli-keyframes")))
    yield server
    server.stop()


def test_generate_puts_the_keyframe_on_its_frame(stops: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "story.mp4"
    result = piped(["generate", "-f", str(stops[0]), "-l", str(stops[2]), "--keyframe",
                    f"1.25={stops[1]}", "--model", "segue-flow", "-p", "x --rs 480p --dur 2",
                    "--json", "-o", str(out)])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == 49
    video = read_frames(out)
    first, middle, last = (fit_to(Image.open(p), 864, 480) for p in stops)
    ends = min(psnr(video[0], first), psnr(video[-1], last))
    assert psnr(video[30], middle) >= ends - 1.0  # round(1.25 × 24) = 30
    assert psnr(video[27], middle) < psnr(video[30], middle) - 1.5


def test_generate_refuses_a_bad_keyframe(stops: list[Path], tmp_path: Path) -> None:
    args = ["generate", "-f", str(stops[0]), "-l", str(stops[2]), "--model", "segue-flow",
            "--duration", "2", "--json", "-o", str(tmp_path / "x.mp4")]
    malformed = piped([*args, "--keyframe", str(stops[1])])
    assert malformed.returncode == 2 and "TIME=IMAGE" in malformed.stderr
    late = piped([*args, "--keyframe", f"3={stops[1]}"])
    assert late.returncode == 1
    error = json.loads(late.stdout)["error"]
    assert error["param"] == "--keyframe" and "less than 2 s" in error["message"]
    blend = piped([*args[:6], "segue-blend", *args[7:], "--keyframe", f"1={stops[1]}"])
    assert blend.returncode == 1
    assert "blend engine, which cannot place keyframes" in json.loads(blend.stdout)[
        "error"]["message"]
    assert not (tmp_path / "x.mp4").exists()


def test_submit_sends_the_keyframes(stops: list[Path], live: LiveServer) -> None:
    result = piped(["submit", "-f", str(stops[0]), "-l", str(stops[2]), "-k",
                    f"0.5={stops[1]}", "--model", "segue-flow", "-p", "x --rs 480p --dur 2",
                    "--no-wait", "--json"], remote_env(live))
    assert result.returncode == 0, result.stderr
    task_id = json.loads(result.stdout)["id"]
    task = httpx.get(f"{live.url}{TASKS}/{task_id}",
                     headers={"Authorization": f"Bearer {KEY}"}).json()
    assert task["keyframes"] == [{"time": 0.5, "frame": 12, "image_url": None}]
    assert live.wait(task_id)["status"] == "succeeded"
