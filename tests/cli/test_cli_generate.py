"""``segue generate``, ``submit`` and ``wait`` run as real processes on a pseudo-terminal."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from PIL import Image

from tests.conftest import KEY, LiveServer, make_settings, scene, start_server

ENTRY = "import sys; from segue.cli import main; sys.argv[0] = 'segue'; main()"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
TASKS = "/api/v3/contents/generations/tasks"


def terminal(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal (so rich draws its progress bar); (exit code, text).

    Started by ``subprocess`` (fork and exec in C), not by pexpect, whose child runs Python
    between fork and exec: with the live server's threads busy in this process, that child
    could hang before it ever ran the CLI.
    """
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    child = subprocess.Popen(
        [sys.executable, "-c", ENTRY, *args], stdin=slave, stdout=slave, stderr=slave,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", **(env or {})},
        start_new_session=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    code = child.wait(timeout=max(1.0, deadline - time.monotonic()))
    text = b"".join(chunks).decode("utf-8", "replace")
    return code, " ".join(ANSI.sub("\n", text).split())


def piped(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=90)


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("frames")
    first, last = folder / "first.png", folder / "last.jpg"
    Image.fromarray(scene(640, 360)).save(first)
    Image.fromarray(scene(640, 360, shift=30, seed=2)).save(last, quality=92)
    return first, last


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(make_settings(tmp_path_factory.mktemp("cli")))
    yield server
    server.stop()


def remote_env(live: LiveServer) -> dict[str, str]:
    return {"SEGUE_URL": live.url, "SEGUE_KEY": KEY}


def test_generate_shows_progress_and_summary(frames: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    code, text = terminal(["generate", "--first", str(frames[0]), "--last", str(frames[1]),
                           "--prompt", "a pan --rs 480p", "--duration", "2", "--model",
                           "segue-blend", "--return-last-frame", "-o", str(out)])
    assert code == 0, text
    assert "49/49 frames" in text and "elapsed 0:00:" in text  # the elapsed time is labelled
    assert "ETA -" not in text and "ETA 0 s" not in text  # an ETA only while one is known
    assert re.search(r"Wrote .*clip\.mp4 \(\d+\.\d kB\): 49 frames, 864x480 16:9, seed \d+, "
                     r"19845 tokens, \d+\.\d s", text), text
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        decoded = sum(1 for _ in container.decode(stream))
        assert (stream.codec_context.width, stream.codec_context.height) == (864, 480)
    assert decoded == 49
    assert Image.open(tmp_path / "clip-last.png").size == (864, 480)


def test_generate_refuses_what_the_api_refuses(frames: tuple[Path, Path], tmp_path: Path) -> None:
    code, text = terminal(["generate", "-f", str(frames[0]), "-l", str(frames[1]),
                           "--duration", "20", "-o", str(tmp_path / "x.mp4")])
    assert code == 1
    assert "The parameter `duration` specified in the request is not valid: must be between " \
           "2 and 12, got 20." in text
    assert not (tmp_path / "x.mp4").exists()

    small = tmp_path / "small.png"
    Image.fromarray(scene(300, 300)).save(small)
    result = piped(["generate", "-f", str(small), "-l", str(frames[1]), "--json",
                    "-o", str(tmp_path / "y.mp4")])
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["param"] == "first_frame" and "more than 300" in error["message"]


def test_generate_json_for_scripts(frames: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "s.mp4"
    result = piped(["generate", "-f", str(frames[0]), "-l", str(frames[1]), "--model",
                    "segue-blend", "-p", "x --rs 480p --dur 2 --seed 7", "--json", "-o", str(out)])
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 49 and summary["seed"] == 7 and summary["tokens"] == 19845
    assert summary["bytes"] == out.stat().st_size > 0
    assert "━" not in result.stderr  # no progress bar when scripted


def test_submit_follows_the_task_and_downloads(frames: tuple[Path, Path], live: LiveServer,
                                               tmp_path: Path) -> None:
    out = tmp_path / "remote.mp4"
    code, text = terminal(["submit", "-f", str(frames[0]), "-l", str(frames[1]), "-p",
                           "dusk --rs 480p", "--duration", "2", "--model", "segue-blend",
                           "--return-last-frame", "-o", str(out)], remote_env(live))
    assert code == 0, text
    task_id = re.search(r"Task (cgt-\S+)", text).group(1)  # type: ignore[union-attr]
    assert "succeeded" in text and "100%" in text
    assert re.search(rf"Succeeded {task_id}: 480p 16:9, 2 s, seed \d+, 19845 tokens", text)
    assert out.stat().st_size > 0 and (tmp_path / "remote-last.png").exists()
    assert re.search(r"Wrote \S*remote-last\.png \(last frame\)", text), text
    assert "ETA -" not in text and "elapsed 0:00:" in text

    code, text = terminal(["wait", task_id, "--json"], remote_env(live))
    assert code == 0 and json.loads(text)["id"] == task_id


def test_submit_and_wait_report_api_errors(frames: tuple[Path, Path], live: LiveServer) -> None:
    code, text = terminal(["submit", "-f", str(frames[0]), "-l", str(frames[1]),
                           "--duration", "20", "--model", "segue-blend"], remote_env(live))
    assert code == 1
    assert "Error (InvalidParameter): The parameter `duration`" in text and "Request id:" in text

    code, text = terminal(["wait", "cgt-20250101000000-nope0"], remote_env(live))
    assert code == 1 and "The specified task cgt-20250101000000-nope0 is not found" in text
    assert "queued" not in text and "%" not in text  # no bar drawn for a task that is not

    result = piped(["submit", "-f", str(frames[0]), "-l", str(frames[1]), "--model",
                    "segue-blend", "-p", "--rs 480p --dur 2", "--no-wait", "--json"],
                   {**remote_env(live), "SEGUE_KEY": "wrong"})
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "AuthenticationError"


def test_help_has_examples() -> None:
    for command in ("generate", "submit", "wait"):
        result = piped([command, "--help"], {"COLUMNS": "120"})
        assert result.returncode == 0 and "Example" in result.stdout
    listing = piped(["--help"], {"COLUMNS": "120"}).stdout
    submit = next(line for line in listing.splitlines() if " submit " in line)
    assert "data URLs." in submit  # each command's summary is one line, unbroken
    assert "SEGUE_KEY" in piped(["submit", "--help"], {"COLUMNS": "120"}).stdout
