"""The model registry: which engine renders a model id, in which modes, with which defaults.

The built-in registry (``models.json`` beside this file) lists every public
Seedance id and Segue's own ids. An operator replaces it with
``SEGUE_MODELS_FILE``. Volcengine's ``doubao-`` prefixed ids resolve to the
same entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from segue.domain import RESOLUTIONS, Mode
from segue.engines.base import engine_names
from segue.errors import NotFound


@dataclass(frozen=True)
class ModelEntry:
    id: str
    engine: str
    modes: frozenset[Mode]  # what the model offers, before the engine's own limits
    tier: str = "lite"  # lite | pro: picks the default create-rate limit
    resolution: str = "720p"  # default when the request names none
    options: dict[str, object] = field(default_factory=dict, hash=False)
    description: str = ""
    resolutions: tuple[str, ...] = RESOLUTIONS
    min_duration: int = 2
    max_duration: int = 12
    default_duration: int = 5  # -1 where the model chooses by default

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id, "object": "model", "engine": self.engine, "tier": self.tier,
            "default_resolution": self.resolution, "modes": sorted(m.value for m in self.modes),
            "description": self.description,
        }


class ModelRegistry:
    def __init__(self, entries: list[ModelEntry]) -> None:
        self._entries = {e.id: e for e in entries}

    @classmethod
    def load(cls, path: Path | None = None) -> ModelRegistry:
        if path is None:
            text = resources.files("segue").joinpath("models.json").read_text()
        else:
            text = Path(path).read_text()
        entries = []
        for raw in json.loads(text)["models"]:
            if raw["engine"] not in engine_names():
                raise ValueError(f"model {raw['id']}: unknown engine {raw['engine']!r}")
            entries.append(ModelEntry(
                id=raw["id"], engine=raw["engine"],
                modes=frozenset(Mode(m) for m in raw["modes"]),
                tier=raw.get("tier", "lite"), resolution=raw.get("resolution", "720p"),
                options=raw.get("options", {}), description=raw.get("description", ""),
            ))
        return cls(entries)

    def get(self, model_id: str) -> ModelEntry:
        entry = self._entries.get(model_id)
        if entry is None and model_id.startswith("doubao-"):
            entry = self._entries.get(model_id.removeprefix("doubao-"))
        if entry is None:
            raise NotFound(
                f"The model or endpoint {model_id} does not exist or you do not have access to it.",
                code="InvalidEndpointOrModel.NotFound", param="model",
            )
        return entry

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries.values())

    @staticmethod
    def spellings(model_ids: Iterable[str]) -> list[str]:
        """Every id a task of these models may be stored under (Volcengine adds doubao-)."""
        return [spelling for m in model_ids for spelling in (m, f"doubao-{m}")]
