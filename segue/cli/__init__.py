"""The ``segue`` command: serve | worker | migrate | generate | submit | wait | keys | tasks."""

from __future__ import annotations

import typer

from segue.cli import client, ops

app = typer.Typer(
    name="segue", no_args_is_help=True, rich_markup_mode="rich",
    help="Segue: first-frame/last-frame to video, self-hosted.",
)
ops.register(app)
client.register(app)
