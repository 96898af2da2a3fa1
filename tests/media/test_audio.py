"""The AAC sound track: resampled to 48 kHz stereo, cut or padded to the video's length."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from segue.media.audio import RATE, fit_length, to_stereo_48k
from segue.media.video import VideoEncoder, read_frames

FRAMES, FPS, SIZE = 25, 24, 32


def tone(seconds: float, rate: int, channels: int = 1, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.tile(0.5 * np.sin(2 * np.pi * hz * t), (channels, 1)).astype(np.float32)


def write(path: Path, samples: np.ndarray | None, rate: int = 8000) -> None:
    with VideoEncoder(path, SIZE, SIZE, FRAMES, fps=FPS, audio=True) as encoder:
        for i in range(FRAMES):
            encoder.write(np.full((SIZE, SIZE, 3), i * 9, np.uint8))
        if samples is not None:
            encoder.add_audio(samples, rate)


def decoded_audio(path: Path) -> tuple[str, int, np.ndarray]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray() for f in container.decode(stream)]
        return stream.codec_context.name, stream.sample_rate, np.concatenate(chunks, axis=1)


@pytest.mark.parametrize("seconds", [0.5, 1.0416, 3.0])  # short, exact, long
def test_the_track_is_aac_of_the_videos_length_whatever_the_engine_gave(tmp_path, seconds):
    path = tmp_path / "v.mp4"
    write(path, tone(seconds, 8000))
    codec, rate, audio = decoded_audio(path)
    assert codec == "aac" and rate == RATE and audio.shape[0] == 2
    assert abs(audio.shape[1] / RATE - FRAMES / FPS) <= 2048 / RATE
    assert len(read_frames(path)) == FRAMES
    heard = audio[:, : int(min(seconds, FRAMES / FPS) * RATE) - 2048]
    assert np.sqrt(np.mean(heard[:, 2048:] ** 2)) > 0.2  # the tone, not silence


def test_resampling_keeps_the_pitch_and_padding_is_silence():
    stereo = to_stereo_48k(tone(1.0, 8000, hz=500.0), 8000)
    assert stereo.shape[0] == 2 and abs(stereo.shape[1] - RATE) <= 64
    spectrum = np.abs(np.fft.rfft(stereo[0, :RATE // 2]))
    assert abs(np.argmax(spectrum) * 2 - 500) <= 4  # bins of 2 Hz over half a second
    padded = fit_length(stereo, RATE * 2)
    assert padded.shape == (2, RATE * 2) and not padded[:, RATE + 64:].any()
    assert fit_length(stereo, 100).shape == (2, 100)


def test_bad_tracks_and_a_missing_track_leave_no_file(tmp_path):
    path = tmp_path / "v.mp4"
    with pytest.raises(ValueError, match="audio track was not given"):
        write(path, None)
    assert not path.exists()
    with pytest.raises(ValueError, match="1 or 2 channels"):
        write(path, np.zeros((3, 100), np.float32))
    assert not path.exists()
    with pytest.raises(ValueError, match="sample rate"):
        write(path, tone(1.0, 8000), rate=0)
    with VideoEncoder(path, SIZE, SIZE, 1) as silent:
        silent.write(np.zeros((SIZE, SIZE, 3), np.uint8))
        with pytest.raises(ValueError, match="without an audio track"):
            silent.add_audio(tone(1.0, 8000), 8000)
    with av.open(str(path)) as container:
        assert not container.streams.audio
