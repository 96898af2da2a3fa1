"""What a ``/v1/videos/{id}/content`` preview costs: thumbnail and spritesheet of a stored MP4.

Both are made from the stored video when asked for (``segue.media.previews``). A 720p
5 s clip (1248×704, 121 frames, the product's encoder defaults) of a panning texture is
written once; then, each ``--repeat`` times, in this process:

- ``decode_all``: decoding every frame to RGB (the baseline: what any preview of the whole
  clip must at least do);
- ``thumbnail``: the first frame as WebP;
- ``spritesheet``: 25 frames spread over the clip, 256 px wide each, as one JPEG.

Times are wall clock, medians, with ratios to the baseline measured in the same run.

Usage (from the repository root)::

    python benchmarks/previews.py [--repeat 5] [--out benchmarks/results/previews.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import cv2
import numpy as np

from segue.media.previews import spritesheet, thumbnail
from segue.media.video import VideoEncoder, _to_rgb

WIDTH, HEIGHT, FRAMES = 1248, 704, 121


def write_clip(path: Path) -> None:
    rng = np.random.default_rng(0)
    # smooth coloured noise: detail like a photograph's, not per-pixel noise (which no
    # image codec compresses, and no render produces)
    coarse = rng.random((HEIGHT // 8, WIDTH // 4, 3)).astype(np.float32) * 255
    texture = cv2.resize(coarse, (WIDTH * 2, HEIGHT), interpolation=cv2.INTER_CUBIC)
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    with VideoEncoder(path, WIDTH, HEIGHT, FRAMES) as encoder:
        for i in range(FRAMES):
            x = i * WIDTH // FRAMES  # a pan across the texture
            encoder.write(np.ascontiguousarray(texture[:, x:x + WIDTH]))


def decode_all(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for frame in container.decode(video=0) if _to_rgb(frame).size)


def timed(fn, path: Path, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(path)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/previews.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        write_clip(clip)
        base, frames = timed(decode_all, clip, args.repeat)
        thumb, thumb_bytes = timed(thumbnail, clip, args.repeat)
        sheet, sheet_bytes = timed(spritesheet, clip, args.repeat)
    assert frames == FRAMES
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "clip": f"{WIDTH}x{HEIGHT}, {FRAMES} frames", "repeat": args.repeat,
        "decode_all_s": round(base, 3),
        "thumbnail_s": round(thumb, 3), "thumbnail_ratio": round(thumb / base, 3),
        "thumbnail_bytes": len(thumb_bytes),  # type: ignore[arg-type]
        "spritesheet_s": round(sheet, 3), "spritesheet_ratio": round(sheet / base, 3),
        "spritesheet_bytes": len(sheet_bytes),  # type: ignore[arg-type]
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(
        f"# Preview cost ({result['date']}, load average {result['load_average']})\n\n"
        f"720p 5 s clip ({result['clip']}), medians of {args.repeat} runs, in process.\n\n"
        "| what | seconds | × decoding every frame | bytes |\n|---|---|---|---|\n"
        f"| decode every frame to RGB (baseline) | {base:.3f} | 1.00 | |\n"
        f"| thumbnail (first frame, WebP) | {thumb:.3f} | {thumb / base:.2f} | "
        f"{result['thumbnail_bytes']} |\n"
        f"| spritesheet (25 tiles, JPEG) | {sheet:.3f} | {sheet / base:.2f} | "
        f"{result['spritesheet_bytes']} |\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
