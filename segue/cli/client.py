"""Commands for people making videos: generate (local), submit and wait (through a server)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(stderr=True)


def generate(
    first: Annotated[Path, typer.Option(help="First frame image.", exists=True, dir_okay=False)],
    last: Annotated[Path, typer.Option(help="Last frame image.", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the MP4.")],
    prompt: Annotated[str, typer.Option(help="Prompt; text commands such as --rs 480p apply.")
                      ] = "",
    model: Annotated[str, typer.Option(help="Model id from the registry.")] = "segue-flow",
    resolution: Annotated[Optional[str], typer.Option(help="480p, 720p or 1080p.")] = None,
    ratio: Annotated[Optional[str], typer.Option(help="16:9, 4:3, 1:1, 3:4, 9:16, 21:9 or "
                                                 "adaptive.")] = None,
    duration: Annotated[Optional[int], typer.Option(help="Seconds, 2-12.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed; -1 for random.")] = None,
    camerafixed: Annotated[Optional[bool], typer.Option(help="Keep the camera still.")] = None,
    watermark: Annotated[Optional[bool], typer.Option(help="Draw 'AI generated'.")] = None,
) -> None:
    """Render a video locally, without a server.

    [b]Example[/b]: segue generate --first a.png --last b.png --prompt "a slow pan" -o out.mp4
    """
    from PIL import Image

    from segue.models import ModelRegistry
    from segue.render import render_video
    from segue.requests import build_request, check_mode
    from segue.domain import ImageInput
    from segue.engines.base import create_engine
    from segue.settings import Settings

    settings = Settings()
    registry = ModelRegistry.load(settings.models_file)
    entry = registry.get(model)
    fields = {"resolution": resolution, "ratio": ratio, "duration": duration, "seed": seed,
              "camerafixed": camerafixed, "watermark": watermark}
    request = build_request(entry, model=model, text=prompt,
                            images=[ImageInput(str(first), "first_frame"),
                                    ImageInput(str(last), "last_frame")],
                            fields=fields, surface="ark")
    engine = create_engine(entry.engine, entry.options)
    check_mode(entry, engine.modes, request.mode)
    images = [("first_frame", Image.open(first).convert("RGB")),
              ("last_frame", Image.open(last).convert("RGB"))]
    with tempfile.TemporaryDirectory() as tmp:
        result = render_video(request, engine, images, Path(tmp), crf=settings.video_crf,
                              preset=settings.video_preset)
        shutil.move(str(result.video), output)
    console.print(json.dumps({"output": str(output), "width": result.width,
                              "height": result.height, "frames": result.frames,
                              "tokens": result.tokens, "seconds": round(result.seconds, 2)}))


def register(app: typer.Typer) -> None:
    app.command()(generate)
