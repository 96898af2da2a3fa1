"""Segue: first-frame/last-frame to video, self-hosted.

``segue.Client`` is imported lazily, so that ``import segue`` stays cheap for the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segue.client import Client

__all__ = ["Client"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from segue.client import Client

        return Client
    raise AttributeError(f"module 'segue' has no attribute {name!r}")
