"""Commands for people making videos: generate (local), submit and wait (through a server).

All three validate exactly as the API does, show a progress bar on a terminal, print a short
summary (or, with ``--json``, one JSON document on stdout) and exit 1 with the API's error
message when something is refused or a task fails. Typer's own usage errors exit 2.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

console = Console(stderr=True, highlight=False)
DEFAULT_MODEL = "seedance-1-0-lite-i2v-250428"
ENV_HELP = "Env: SEGUE_URL and SEGUE_KEY."

# --- options shared by generate and submit ---------------------------------------------------
First = Annotated[str, typer.Option("--first", "-f", help="First frame: a file or an URL.")]
Last = Annotated[str, typer.Option("--last", "-l", help="Last frame: a file or an URL.")]
Prompt = Annotated[str, typer.Option(
    "--prompt", "-p", help="Prompt; text commands such as --rs 480p apply unless an option "
    "below overrides them.")]
Model = Annotated[str, typer.Option(help="Model id (GET /api/v3/models lists them).")]
Resolution = Annotated[str | None, typer.Option(help="480p, 720p or 1080p (default: the "
                                                   "model's).")]
Ratio = Annotated[str | None, typer.Option(help="16:9, 4:3, 1:1, 3:4, 9:16, 21:9 or adaptive "
                                              "(default: adaptive).")]
Duration = Annotated[int | None, typer.Option(help="Seconds, 2-12 (default: 5).")]
Seed = Annotated[int | None, typer.Option(help="0 to 4294967295; -1 for random (default: -1).")]
CameraFixed = Annotated[bool | None, typer.Option(
    "--camera-fixed/--no-camera-fixed", help="Keep the camera still (default: no).")]
Watermark = Annotated[bool | None, typer.Option(
    "--watermark/--no-watermark", help="Draw 'AI generated' (default: no).")]
ReturnLast = Annotated[bool, typer.Option(
    "--return-last-frame", help="Also save the last frame beside the video, as <name>-last.png "
    "for -o <name>.mp4.")]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the MP4.",
                                                dir_okay=False)]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and no "
                                       "progress bar (for scripts).")]
Keyframes = Annotated[list[str] | None, typer.Option(
    "--keyframe", "-k", metavar="TIME=IMAGE", help="A frame between the ends at TIME seconds "
    "(a file or an URL), e.g. 2.5=mid.png; repeat it for a storyboard.")]
Url = Annotated[str, typer.Option(envvar="SEGUE_URL", help="Server URL.")]
Key = Annotated[str | None, typer.Option(envvar="SEGUE_KEY", help="API key.")]


def _fields(resolution: str | None, ratio: str | None, duration: int | None, seed: int | None,
            camera_fixed: bool | None, watermark: bool | None,
            return_last_frame: bool) -> dict[str, Any]:
    """Top-level settings; None is "not given", so a text command in the prompt applies."""
    return {"resolution": resolution, "ratio": ratio, "duration": duration, "seed": seed,
            "camerafixed": camera_fixed, "watermark": watermark,
            "return_last_frame": return_last_frame or None}


def _keyframes(specs: list[str] | None) -> list[tuple[float, str]]:
    """``--keyframe TIME=IMAGE`` values as (seconds, image); a malformed one is a usage error."""
    keyframes = []
    for spec in specs or ():
        time, sep, image = spec.partition("=")
        try:
            seconds = float(time)
        except ValueError:
            seconds = None
        if not sep or not image or seconds is None:
            raise typer.BadParameter(f"{spec!r} is not TIME=IMAGE, such as 2.5=mid.png.",
                                     param_hint="--keyframe")
        keyframes.append((seconds, image))
    return keyframes


def _fail(code: str, message: str, as_json: bool, param: str = "") -> NoReturn:
    if as_json:
        print(json.dumps({"error": {"code": code, "message": message, "param": param}}))
    else:
        console.print(f"[bold red]Error[/] ({code}): {message}", soft_wrap=True)
    raise typer.Exit(1)


def _size(path: Path) -> str:
    size = float(path.stat().st_size)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def _eta(seconds: float | None) -> str:
    """The ETA column's text: nothing until an estimate exists, and nothing once done."""
    if not seconds:
        return ""
    return f"ETA {seconds:.0f} s" if seconds >= 0.5 else "ETA <1 s"


def _last_frame_path(output: Path) -> Path:
    return output.with_name(output.stem + "-last.png")


# --- generate: a local render --------------------------------------------------------------


class _Counted:
    """Wraps an engine to count frames handed to the encoder (which writes each one at once)."""

    def __init__(self, engine: Any, on_frame: Any) -> None:
        from segue.engines.base import makes_audio

        self.name, self.modes = engine.name, engine.modes
        self.makes_audio = makes_audio(engine)
        self._engine, self._on_frame = engine, on_frame

    def render(self, job: Any) -> Iterator[Any]:
        for index, frame in enumerate(self._engine.render(job), 1):
            yield frame
            self._on_frame(index)  # the encoder has written it when it asks for the next


def _load(ref: str, param: str, settings: Any) -> Any:
    """A local file under the API's image rules (format, sides, aspect, bytes), or a URL."""
    from segue.errors import InvalidImage
    from segue.media.images import decode_image, load_image

    path = Path(ref)
    if path.is_file():
        if path.stat().st_size > settings.image_max_bytes:
            raise InvalidImage(param, "TooLarge", f"{ref} is larger than "
                                                  f"{settings.image_max_bytes} bytes.")
        return decode_image(path.read_bytes(), param)
    if ref.lower().startswith(("http://", "https://", "data:")):
        return load_image(ref, param, settings)
    raise InvalidImage(param, "NotFound", f"{ref} is neither a file nor an http(s) or data URL.")


def _progress(enabled: bool, frames: bool) -> Progress:
    """A bar with its count (frames, or percent), the ETA when known and the labelled elapsed
    time."""
    count = (MofNCompleteColumn(), TextColumn("frames")) if frames else (TaskProgressColumn(),)
    return Progress(
        TextColumn("{task.description:<9}"), BarColumn(), *count,
        TextColumn("{task.fields[eta]:>9}"), TextColumn("elapsed"), TimeElapsedColumn(),
        console=console, disable=not enabled,
    )


def _render(request: Any, engine: Any, images: Any, workdir: Path, settings: Any,
            show: bool) -> Any:
    from segue.render import render_video

    with _progress(show, frames=True) as bar:
        task = bar.add_task("render", total=request.frames, eta="")

        def on_frame(done: int) -> None:
            bar.update(task, completed=done,
                       description="encode" if done >= request.frames else "render")

        def on_progress(fraction: float, eta: float | None) -> None:
            bar.update(task, eta=_eta(eta))

        result = render_video(request, _Counted(engine, on_frame), images, workdir,
                              progress=on_progress, crf=settings.video_crf,
                              preset=settings.video_preset,
                              encoder=settings.video_encoder)
        bar.update(task, description="done", eta="")
    return result


def _import_pyav() -> None:
    try:
        import segue.media.video  # noqa: F401
    except ImportError:  # told by the encoder's opening, which imports it again
        pass


def _load_all(stops: list[tuple[str, str, float | None]], settings: Any) -> list[Any]:
    """The images as (role, image), in the order given."""
    from segue.domain import ImageInput

    with ThreadPoolExecutor(2, thread_name_prefix="segue-load") as pool:
        # The images decode in two threads (Pillow lets go of the GIL) while PyAV, the
        # encoder's library, loads in a third that the render does not wait for.
        # Not before the engine is made: the flow engine limits glibc to one malloc arena
        # then, and threads started earlier keep arenas of their own (+25 MB of peak RSS at
        # 720p). Pillow and NumPy are imported already (decode_image in generate), so the
        # threads import nothing the main thread imports.
        # Errors come in the order given: the first image's, the keyframes', the last's.
        loading = [pool.submit(_load, ref, ImageInput(ref, role, time).name, settings)
                   for ref, role, time in stops]
        threading.Thread(target=_import_pyav, name="segue-pyav").start()
        return [(role, done.result()) for (_, role, _), done in zip(stops, loading, strict=True)]


def generate(
    first: First, last: Last, output: Output = Path("out.mp4"), prompt: Prompt = "",
    model: Model = DEFAULT_MODEL, resolution: Resolution = None, ratio: Ratio = None,
    duration: Duration = None, seed: Seed = None, camera_fixed: CameraFixed = None,
    watermark: Watermark = None, return_last_frame: ReturnLast = False, as_json: JsonOut = False,
    keyframe: Keyframes = None,
) -> None:
    """Render a video locally, without a server, with a progress bar and a summary.

    [b]Examples[/b]

      segue generate --first a.png --last b.png --prompt "a slow pan" -o out.mp4

      segue generate -f a.png -l b.png --keyframe 2.5=mid.png --dur 5 -o story.mp4

      segue generate -f a.png -l b.png -p "dusk --rs 480p --dur 3" --seed 7 --json
    """
    from segue.cli.ops import check_encoder
    from segue.domain import ImageInput
    from segue.engines.base import create_engine
    from segue.errors import SegueError
    from segue.media.images import decode_image  # noqa: F401 - see the image threads below
    from segue.models import ModelRegistry
    from segue.requests import build_request, fit_to_engine
    from segue.settings import Settings

    output = output or Path("out.mp4")
    settings = Settings()
    check_encoder(settings)
    stops: list[tuple[str, str, float | None]] = [
        (first, "first_frame", None), *((ref, "keyframe", time) for time, ref in
                                        _keyframes(keyframe)), (last, "last_frame", None)]
    try:
        entry = ModelRegistry.load(settings.models_file).get(model)
        request = build_request(
            entry, model=model, text=prompt, surface="cli",
            images=[ImageInput(ref, role, time) for ref, role, time in stops],
            fields=_fields(resolution, ratio, duration, seed, camera_fixed, watermark,
                           return_last_frame))
        engine = create_engine(entry.engine, entry.options)
        request = fit_to_engine(entry, engine, request)
        images = _load_all(stops, settings)
        with tempfile.TemporaryDirectory() as tmp:
            result = _render(request, engine, images, Path(tmp), settings, show=not as_json)
            shutil.move(str(result.video), output)
            last_png = None
            if result.last_frame is not None:
                last_png = _last_frame_path(output)
                shutil.move(str(result.last_frame), last_png)
    except SegueError as exc:
        _fail(exc.code, exc.message, as_json, exc.param)
    summary = {"output": str(output), "bytes": output.stat().st_size, "width": result.width,
               "height": result.height, "ratio": result.ratio, "frames": result.frames,
               "seed": request.seed, "tokens": result.tokens,
               "seconds": round(result.seconds, 2),
               "last_frame": str(last_png) if last_png else None}
    if as_json:
        print(json.dumps(summary))
        return
    console.print(f"[green]Wrote[/] {output} ({_size(output)}): {result.frames} frames, "
                  f"{result.width}x{result.height} {result.ratio}, seed {request.seed}, "
                  f"{result.tokens} tokens, {result.seconds:.1f} s", soft_wrap=True)
    if last_png:
        console.print(f"[green]Wrote[/] {last_png} (last frame)", soft_wrap=True)


# --- submit and wait: through a server -----------------------------------------------------


def _follow(client: Any, task_id: str, show: bool) -> dict[str, Any]:
    """Wait for a task with a progress bar driven by the task object's progress and eta.

    The task is read before a bar is drawn: an unknown id is told alone (not under a
    "queued 0%" bar it never had), and a task already ended needs no bar."""
    from segue.client import FINAL

    first = client.get(task_id)
    if first.get("status") in FINAL:
        return first  # type: ignore[no-any-return]
    with _progress(show, frames=False) as bar:
        job = bar.add_task(first.get("status", "?"), total=100, eta="")

        def update(task: dict[str, Any]) -> None:
            done = 100 if task.get("status") == "succeeded" else task.get("progress", 0) or 0
            bar.update(job, completed=done, description=task.get("status", "?"),
                       eta=_eta(task.get("eta")))

        update(first)
        return client.wait(task_id, progress=update, check=False)  # type: ignore[no-any-return]


def _finish(client: Any, task: dict[str, Any], output: Path | None, as_json: bool) -> None:
    if task.get("status") != "succeeded":
        error = task.get("error") or {}
        _fail(error.get("code") or task.get("status", "failed"),
              error.get("message") or f"The task {task.get('id')} is {task.get('status')}.",
              as_json)
    content = task.get("content") or {}
    last_png = None
    if output is not None:
        client.download(content["video_url"], output)
        if content.get("last_frame_url"):
            last_png = _last_frame_path(output)
            client.download(content["last_frame_url"], last_png)
    if as_json:
        print(json.dumps(task))
        return
    usage = task.get("usage") or {}
    length = task.get("duration") or f"{task.get('frames')} frames"
    console.print(f"[green]Succeeded[/] {task['id']}: {task.get('resolution')} "
                  f"{task.get('ratio')}, {length} s, seed {task.get('seed')}, "
                  f"{usage.get('completion_tokens')} tokens, "
                  f"{task['updated_at'] - task['created_at']} s", soft_wrap=True)
    if output is not None:
        console.print(f"[green]Wrote[/] {output} ({_size(output)})", soft_wrap=True)
        if last_png is not None:
            console.print(f"[green]Wrote[/] {last_png} (last frame)", soft_wrap=True)
    else:
        console.print(f"Video: {content.get('video_url')}")


def _remote(url: str, key: str | None, as_json: bool, action: Any) -> None:
    from segue.client import APIError, Client

    try:
        with Client(url, key) as client:
            action(client)
    except APIError as exc:
        _fail(exc.code, exc.message, as_json, exc.param)
    except FileNotFoundError as exc:
        _fail("InvalidImageURL.NotFound", str(exc), as_json)


def submit(
    first: First, last: Last, prompt: Prompt = "", model: Model = DEFAULT_MODEL,
    resolution: Resolution = None, ratio: Ratio = None, duration: Duration = None,
    seed: Seed = None, camera_fixed: CameraFixed = None, watermark: Watermark = None,
    return_last_frame: ReturnLast = False, output: Output = None,
    wait: Annotated[bool, typer.Option(help="Wait for the result with a progress bar.")] = True,
    url: Url = "http://127.0.0.1:8000", key: Key = None, as_json: JsonOut = False,
    keyframe: Keyframes = None,
) -> None:
    """Create a task on a running server and follow it; local files travel as data URLs.

    [b]Examples[/b]

      SEGUE_KEY=k1 segue submit -f a.png -l b.png -p "a slow pan" -o out.mp4

      segue submit --url http://gpu-box:8000 --key k1 -f a.png -l b.png --no-wait --json
    """
    keyframes = _keyframes(keyframe)

    def action(client: Any) -> None:
        task_id = client.create(first, last, prompt, model=model, keyframes=keyframes, **_fields(
            resolution, ratio, duration, seed, camera_fixed, watermark, return_last_frame))
        if not wait:
            print(json.dumps({"id": task_id}) if as_json else task_id)
            return
        if not as_json:
            console.print(f"Task {task_id}")
        _finish(client, _follow(client, task_id, not as_json), output, as_json)

    _remote(url, key, as_json, action)


def wait(
    task_id: Annotated[str, typer.Argument(help="The task id (cgt-...).")],
    output: Output = None, url: Url = "http://127.0.0.1:8000", key: Key = None,
    as_json: JsonOut = False,
) -> None:
    """Follow a task until it ends; with -o, download its video (and last frame).

    [b]Example[/b]

      segue wait cgt-20250910201045-sqz6f -o out.mp4
    """
    _remote(url, key, as_json, lambda client: _finish(
        client, _follow(client, task_id, not as_json), output, as_json))


def register(app: typer.Typer) -> None:
    app.command(epilog=None)(generate)
    app.command(epilog=ENV_HELP)(submit)
    app.command(epilog=ENV_HELP)(wait)
