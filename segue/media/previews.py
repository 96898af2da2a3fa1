"""Still previews of a stored MP4: a thumbnail (the first frame) and a spritesheet (a grid).

Made from the stored video when asked for, not at render time: nothing extra is stored,
so retention and deletion stay about one file. The thumbnail decodes one frame; the
spritesheet decodes the clip once, frame by frame, keeping only the chosen tiles.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import av
import numpy as np
from PIL import Image

from segue.media.video import _to_rgb

SPRITE_COLUMNS = 5
SPRITE_TILES = 25  # at most: a 5x5 grid of frames spread evenly over the clip
SPRITE_TILE_WIDTH = 256


def thumbnail(path: Path, quality: int = 90) -> bytes:
    """The first frame at the video's own size, as WebP."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0), None)
        if frame is None:
            raise ValueError(f"{path.name} holds no video frame")
        image = Image.fromarray(_to_rgb(frame))
    buf = io.BytesIO()
    image.save(buf, "WEBP", quality=quality)
    return buf.getvalue()


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for _ in container.demux(stream) if _.size)


def spritesheet(path: Path, quality: int = 85) -> bytes:
    """Up to 25 frames spread evenly from first to last, in rows of 5, as JPEG."""
    total = _frame_count(path)
    count = max(1, min(SPRITE_TILES, total))
    wanted = {round(i * (total - 1) / max(1, count - 1)) for i in range(count)}
    tiles: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                height = max(2, round(SPRITE_TILE_WIDTH * frame.height / frame.width))
                small = frame.reformat(width=SPRITE_TILE_WIDTH, height=height)
                tiles.append(_to_rgb(small))
    if not tiles:
        raise ValueError(f"{path.name} holds no video frame")
    tile_h, tile_w = tiles[0].shape[:2]
    columns = min(SPRITE_COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    sheet = np.zeros((rows * tile_h, columns * tile_w, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = tile
    buf = io.BytesIO()
    Image.fromarray(sheet).save(buf, "JPEG", quality=quality)
    return buf.getvalue()
