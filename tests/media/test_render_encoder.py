"""render_video's encoder opens in a thread while the engine starts (segue.render._Encoder):
frames that come before it is open wait for it and are written in order, and errors are
those of opening before rendering."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

import numpy as np
import pytest

from segue.render import _Encoder


class FakeEncoder:
    def __init__(self) -> None:
        self.frames: list[int] = []
        self.exited: type[BaseException] | None | str = "open"

    def write(self, frame: np.ndarray) -> None:
        self.frames.append(int(frame[0, 0, 0]))

    def __enter__(self) -> FakeEncoder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.exited = exc_type


def _frame(value: int) -> np.ndarray:
    return np.full((2, 2, 3), value, np.uint8)


def _gated(fake: FakeEncoder) -> tuple[Callable[[], FakeEncoder], threading.Event]:
    """An opener of ``fake`` that opens it only once the event is set."""
    may_open = threading.Event()

    def open_encoder() -> FakeEncoder:
        assert may_open.wait(10)
        return fake

    return open_encoder, may_open


def test_frames_made_before_the_encoder_opens_wait_and_keep_their_order() -> None:
    fake = FakeEncoder()
    open_encoder, may_open = _gated(fake)
    with _Encoder(open_encoder) as video:  # type: ignore[arg-type]
        video.write(_frame(0))
        video.write(_frame(1))
        assert fake.frames == []  # held: the encoder is not open yet
        may_open.set()
        video.write(_frame(2))  # more than HELD: waits for the encoder
        assert fake.frames == [0, 1, 2]
        video.write(_frame(3))
    assert fake.frames == [0, 1, 2, 3] and fake.exited is None


def test_frames_still_held_at_the_end_are_written_before_closing() -> None:
    fake = FakeEncoder()
    open_encoder, may_open = _gated(fake)
    with _Encoder(open_encoder) as video:  # type: ignore[arg-type]
        video.write(_frame(7))
        may_open.set()
    assert fake.frames == [7] and fake.exited is None


def test_a_failed_render_aborts_the_encoder() -> None:
    fake = FakeEncoder()
    with pytest.raises(RuntimeError, match="engine"), \
            _Encoder(lambda: fake) as video:  # type: ignore[arg-type,return-value]
        video.write(_frame(1))
        raise RuntimeError("engine")
    assert fake.exited is RuntimeError  # VideoEncoder deletes its partial file then


def test_the_opening_error_comes_first() -> None:
    def open_encoder() -> FakeEncoder:
        raise ValueError("yuv420p needs even, positive sides")

    with pytest.raises(ValueError, match="even"), \
            _Encoder(open_encoder) as video:  # type: ignore[arg-type]
        video.write(_frame(1))
        raise RuntimeError("engine")
