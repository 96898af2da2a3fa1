"""The sound track of a video: a waveform resampled and cut to the video's length, as AAC.

Engines hand over a float waveform at their vocoder's rate (LTX-2: 24 kHz). It is resampled
to 48 kHz stereo (what players and AAC expect), padded with silence or cut to exactly the
video's duration, and encoded in AAC-LC frames of 1024 samples into the MP4 beside the video.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

RATE = 48_000
LAYOUT = "stereo"
BITRATE = 128_000
_FRAME = 1024  # samples per AAC frame


def add_aac_stream(container: av.container.OutputContainer) -> av.AudioStream:
    stream = container.add_stream("aac", rate=RATE, layout=LAYOUT)
    stream.bit_rate = BITRATE
    stream.time_base = Fraction(1, RATE)
    return stream


def to_stereo_48k(samples: np.ndarray, rate: int) -> np.ndarray:
    """channels × n float waveform at ``rate`` -> 2 × m float32 at 48 kHz."""
    if samples.ndim == 1:
        samples = samples[None]
    if samples.ndim != 2 or samples.shape[0] not in (1, 2) or samples.shape[1] == 0:
        raise ValueError(f"audio must be 1 or 2 channels × samples, got {samples.shape}")
    if rate <= 0:
        raise ValueError(f"the audio sample rate must be positive, got {rate}")
    clean = np.clip(np.nan_to_num(samples.astype(np.float32)), -1.0, 1.0)
    layout = "mono" if clean.shape[0] == 1 else "stereo"
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(clean), format="fltp", layout=layout)
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="fltp", layout=LAYOUT, rate=RATE)
    parts = [f.to_ndarray() for f in resampler.resample(frame)]
    parts += [f.to_ndarray() for f in resampler.resample(None)]
    return np.concatenate(parts, axis=1) if parts else np.zeros((2, 0), np.float32)


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Cut to ``length`` samples, or pad the end with silence."""
    if samples.shape[1] >= length:
        return samples[:, :length]
    return np.pad(samples, ((0, 0), (0, length - samples.shape[1])))


def encode_aac(
    container: av.container.OutputContainer, stream: av.AudioStream,
    samples: np.ndarray, rate: int, seconds: float,
) -> None:
    """Mux the waveform, resampled and fitted to ``seconds``, as the AAC ``stream``."""
    audio = fit_length(to_stereo_48k(samples, rate), round(seconds * RATE))
    for start in range(0, audio.shape[1], _FRAME):
        chunk = np.ascontiguousarray(audio[:, start:start + _FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=LAYOUT)
        frame.sample_rate = RATE
        frame.pts = start
        frame.time_base = Fraction(1, RATE)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
