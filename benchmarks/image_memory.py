"""What one input image costs in memory: the create-time check and the worker's decode.

For each kind of picture, at the largest size the rules allow (5999 x 5999 by default), a
file is written once; then a fresh Python process (Segue's imports loaded) resets its peak
resident size (``/proc/self/clear_refs``), runs one stage on the file's bytes, and reports
how far its peak rose above where it stood (``VmHWM`` - ``VmRSS`` before):

- ``check``: ``check_image_data``, what a create does to a data URL in the API process;
- ``decode``: ``decode_image``, the worker's decode to upright 8-bit RGB (kept while the
  task renders);
- ``render_input``: ``decode_image`` then ``fit_to`` 1920x1080, the input's whole way into
  an engine;
- ``task_inputs``: what a worker does with a task's two frames (this picture as both):
  both decoded, the last cropped to the first's aspect and both fitted to 1920x1080, as
  ``render.py`` does before the first frame is rendered.

Each peak is also given as a multiple of the picture's 8-bit RGB size (width x height x 3).
Linux only (``/proc``).

Usage (from the repository root)::

    python benchmarks/image_memory.py [--side 5999] [--out benchmarks/results/image_memory.json]
        [--before benchmarks/results/image_memory.before.json]

``--before`` names an earlier result (the same script run on an earlier version of Segue)
whose decode column the table shows beside this run's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

KINDS = ("rgb8_jpeg", "rgb8_png", "grey16_png", "rgba8_png", "rgba16_png", "palette_trns_png",
         "float_tiff", "rotated_jpeg")
STAGES = ("check", "decode", "render_input", "task_inputs")

# Run in the fresh process: argv = stage, path. Prints the peak's rise in bytes.
PROBE = r"""
import sys
from segue.media.images import check_image_data, crop_to_aspect, decode_image, fit_to

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
stage, path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) starts again from here
before = status("VmRSS:")
if stage == "check":
    check_image_data(data, "first_frame")
elif stage == "decode":
    image = decode_image(data, "first_frame")
elif stage == "render_input":
    frame = fit_to(decode_image(data, "first_frame"), 1920, 1080)
else:
    first = decode_image(data, "first_frame")
    last = crop_to_aspect(decode_image(data, "last_frame"), first.width / first.height)
    frames = fit_to(first, 1920, 1080), fit_to(last, 1920, 1080)
print(status("VmHWM:") - before)
"""


def _gradient(side: int) -> np.ndarray:
    """A smooth 0..1 picture (it compresses as a large input would be sent: small)."""
    ramp = np.linspace(0.0, 1.0, side, dtype=np.float32)
    return (ramp[None, :] * 0.7 + ramp[:, None] * 0.3).astype(np.float32)


def write(kind: str, side: int, folder: Path) -> Path:
    """One picture of ``kind``, side x side, written under ``folder``."""
    unit = _gradient(side)
    path = folder / f"{kind}.{'jpg' if 'jpeg' in kind else 'tiff' if 'tiff' in kind else 'png'}"
    if kind == "float_tiff":
        Image.fromarray(unit, "F").save(path, "TIFF")
    elif kind == "grey16_png":
        Image.fromarray((unit * 65535).astype(np.uint16)).save(path, "PNG")
    elif kind == "rgba16_png":
        path.write_bytes(_png16_rgba(unit))
    else:
        grey = (unit * 255).astype(np.uint8)
        rgb = np.stack([grey, grey[::-1], grey.T], axis=-1)
        if kind == "rgba8_png":
            Image.fromarray(np.dstack([rgb, grey]), "RGBA").save(path, "PNG")
        elif kind == "palette_trns_png":
            image = Image.fromarray(rgb).quantize(64)
            image.save(path, "PNG", transparency=0)
        elif kind == "rotated_jpeg":
            exif = Image.Exif()
            exif[0x0112] = 6
            Image.fromarray(rgb).save(path, "JPEG", quality=90, exif=exif)
        else:
            Image.fromarray(rgb).save(path, "JPEG" if kind.endswith("jpeg") else "PNG")
    return path


def _png16_rgba(unit: np.ndarray) -> bytes:
    """A 16-bit RGBA PNG (Pillow writes none), rows encoded one at a time."""
    import struct
    import zlib

    height, width = unit.shape
    compressor = zlib.compressobj(6)
    body = io.BytesIO()
    for row in unit:
        values = (row * 65535).astype(">u2")
        pixels = np.stack([values, values, values, np.full_like(values, 40000)], axis=-1)
        body.write(compressor.compress(b"\0" + pixels.tobytes()))
    body.write(compressor.flush())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body.getvalue())
            + chunk(b"IEND", b""))


def peak_rise(stage: str, path: Path) -> int:
    """The rise of a fresh process's peak resident size over one stage on ``path``, bytes."""
    done = subprocess.run([sys.executable, "-c", PROBE, stage, str(path)], text=True,
                          capture_output=True, timeout=300, check=True,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    return int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=5999)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/image_memory.json"))
    parser.add_argument("--before", type=Path, default=None)
    args = parser.parse_args()
    rgb_bytes = args.side * args.side * 3
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            path = write(kind, args.side, Path(tmp))
            row = {"kind": kind, "file_bytes": path.stat().st_size}
            for stage in STAGES:
                row[stage] = peak_rise(stage, path)
            rows.append(row)
            print(kind, {k: (round(v / 2**20, 1) if k in STAGES else v) for k, v in row.items()
                         if k != "kind"}, flush=True)
    result = {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "side": args.side,
              "rgb_bytes": rgb_bytes, "cpus": os.cpu_count(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    before = json.loads(args.before.read_text()) if args.before else None
    args.out.with_suffix(".md").write_text(_table(result, before))


def _table(result: dict, before: dict | None = None) -> str:
    mib = 2**20
    lines = [f"# Memory of one input image ({result['side']}x{result['side']})", "",
             f"{result['when']}; the peak resident size's rise in a fresh process over each "
             f"stage, MiB (× the picture's 8-bit RGB size, {result['rgb_bytes'] / mib:.0f} MiB)."
             " `benchmarks/image_memory.py`.", "",
             "| picture | file | check (create) | decode (worker) | decode + fit to 1080p "
             "| a task's two frames |" + (" decode, before |" if before else ""),
             "|---|---|---|---|---|---|" + ("---|" if before else "")]
    earlier = {row["kind"]: row for row in before["rows"]} if before else {}

    def cell(value: int) -> str:
        return f"{value / mib:.0f} ({value / result['rgb_bytes']:.2f}×)"

    for row in result["rows"]:
        cells = [cell(row[s]) for s in STAGES]
        if before:
            cells.append(cell(earlier[row["kind"]]["decode"]) if row["kind"] in earlier else "")
        lines.append(f"| {row['kind']} | {row['file_bytes'] / 1024:.0f} KiB | "
                     + " | ".join(cells) + " |")
    if before:
        lines += ["", f"*Before*: the same decode measured on the previous version of "
                  f"`segue/media/images.py` ({before['when']}): 16-bit greys went through "
                  "`int64` arrays, transparency through three RGBA copies, and the EXIF turn and "
                  "the RGB conversion each made a copy while the decoded picture was held."]
    lines += ["", "Memory follows the pixels, not the file: the 16-bit RGBA and float files here "
              "are larger than `SEGUE_IMAGE_MAX_BYTES` (their gradients do not compress), and a "
              "flat picture of the same size is a few KiB and costs the same."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
