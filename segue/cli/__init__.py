"""The ``segue`` command: serve | worker | migrate | generate | submit | wait | keys | tasks |
weights."""

from __future__ import annotations

import gc
import os
import sys

# Start-up of a command (segue generate: about 0.5 s of imports before the first frame):
# - no cyclic garbage collection while the modules load (about 40 ms of collections that find
#   nothing); collection is back on, with the start-up objects frozen, once they have loaded;
# - NumPy's OpenBLAS would start a thread per core that spins after each call; Segue's only
#   linear algebra is on 3×3 matrices (camera homographies).
gc.disable()
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from segue.cli import client, ops, weights  # noqa: E402

app = typer.Typer(
    name="segue", no_args_is_help=True, rich_markup_mode="rich",
    help="Segue: first-frame/last-frame to video, self-hosted.",
)
ops.register(app)
client.register(app)
weights.register(app)
gc.enable()
gc.freeze()


SECRET = {"SEGUE_API_KEYS", "SEGUE_DATABASE_URL"}  # never echoed (a URL may hold a password)


def main() -> None:
    """The ``segue`` console script: ``app`` with a setting that does not validate told in
    one line per setting (``SEGUE_X=...: why``) and exit status 2, not a traceback."""
    try:
        app()
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        for line in setting_errors(exc):
            print(line, file=sys.stderr)
        sys.exit(2)


def setting_errors(exc: ValidationError) -> list[str]:
    """One line per setting that does not validate (the first reason for each)."""
    lines: dict[str, str] = {}
    for error in exc.errors():
        name = "SEGUE_" + str(error["loc"][0]).upper()
        value = error.get("input")
        given = f"={value}" if isinstance(value, str | int | float) and name not in SECRET else ""
        why = error["msg"].removeprefix("Value error, ")
        lines.setdefault(name, f"segue: {name}{given}: {why}.")
    return list(lines.values())
