"""Fixtures: servers with compressed lifetimes, and a callback receiver on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, make_settings, start_server
from tests.lifecycle.support import Receiver

FAST = dict(
    callback_timeout=0.5, callback_retries=3, callback_backoff=[0.3, 0.3, 0.3],
    sweep_interval=0.2, events_poll_interval=0.05, lease_ttl=3,
)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start a server on ``tmp_path/data`` (again, after a stop: same data) with overrides."""
    started: list[LiveServer] = []

    def _launch(workers: int = 1, **overrides: object) -> LiveServer:
        live = start_server(make_settings(tmp_path / "data", **{**FAST, **overrides}),
                            workers=workers)
        started.append(live)
        return live

    yield _launch
    for live in started:
        if live.thread.is_alive():
            live.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
