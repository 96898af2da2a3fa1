"""The model registry: which engine renders a model id, in which modes, with which defaults.

The built-in registry (``models.json`` beside this file) lists every public
Seedance id and Segue's own ids, each with the capabilities of the upstream
model (resolutions, duration range, audio, drafts, reference media). An
operator replaces it with ``SEGUE_MODELS_FILE``. Volcengine's ``doubao-``
prefixed ids resolve to the same entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

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
    auto_duration: bool = False  # duration -1 (the engine chooses) is allowed
    default_duration: int = 5  # -1 where the model chooses by default
    # generate_audio is offered (the engine must also make sound); a registry entry that
    # does not say leaves it to the engine
    audio: bool = True
    draft: bool = False  # draft: true and draft_task content are offered
    output_formats: tuple[str, ...] = ("mp4",)
    adaptive_ratio_required: bool = False  # first-frame modes need ratio "adaptive"
    max_reference_images: int = 4
    max_reference_videos: int = 0
    max_reference_audio: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id, "object": "model", "engine": self.engine, "tier": self.tier,
            "default_resolution": self.resolution, "modes": sorted(m.value for m in self.modes),
            "description": self.description, "resolutions": list(self.resolutions),
            "min_duration": self.min_duration, "max_duration": self.max_duration,
            "auto_duration": self.auto_duration, "default_duration": self.default_duration,
            "audio": self.audio, "draft": self.draft, "output_formats": list(self.output_formats),
            "adaptive_ratio_required": self.adaptive_ratio_required,
            "max_reference_images": self.max_reference_images,
            "max_reference_videos": self.max_reference_videos,
            "max_reference_audio": self.max_reference_audio,
        }


_CAPABILITIES = ("min_duration", "max_duration", "auto_duration", "default_duration", "audio",
                 "draft", "adaptive_ratio_required", "max_reference_images",
                 "max_reference_videos", "max_reference_audio")


def _entry(raw: dict[str, Any]) -> ModelEntry:
    if raw["engine"] not in engine_names():
        raise ValueError(f"model {raw['id']}: unknown engine {raw['engine']!r}")
    resolutions = tuple(raw.get("resolutions", RESOLUTIONS))
    unknown = set(resolutions) - set(RESOLUTIONS)
    if unknown:
        raise ValueError(f"model {raw['id']}: unknown resolutions {sorted(unknown)}")
    entry = ModelEntry(
        id=raw["id"], engine=raw["engine"], modes=frozenset(Mode(m) for m in raw["modes"]),
        tier=raw.get("tier", "lite"), resolution=raw.get("resolution", "720p"),
        options=raw.get("options", {}), description=raw.get("description", ""),
        resolutions=resolutions, output_formats=tuple(raw.get("output_formats", ("mp4",))),
        **{k: raw[k] for k in _CAPABILITIES if k in raw},
    )
    if entry.resolution not in entry.resolutions:
        raise ValueError(f"model {entry.id}: default resolution {entry.resolution} is not "
                         "one of its resolutions")
    return entry


class ModelRegistry:
    def __init__(self, entries: list[ModelEntry]) -> None:
        self._entries = {e.id: e for e in entries}

    @classmethod
    def load(cls, path: Path | None = None) -> ModelRegistry:
        if path is None:
            text = resources.files("segue").joinpath("models.json").read_text()
        else:
            text = Path(path).read_text()
        return cls([_entry(raw) for raw in json.loads(text)["models"]])

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
