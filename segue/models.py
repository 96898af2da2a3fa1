"""The model registry: which engine renders a model id, in which modes, with which defaults.

The built-in registry (``models.json`` beside this file) lists every public
Seedance id and Segue's own ids, each with the capabilities of the upstream
model (resolutions, duration range, audio, drafts, reference media). An
operator replaces it with ``SEGUE_MODELS_FILE``.

Volcengine (the China region) names the same models differently, and each entry also
answers to that spelling (``volcengine_id``): ``doubao-`` before the BytePlus id for 1.x
(``doubao-seedance-1-5-pro-251215``), ``doubao-`` in place of ``dreamina-`` for 2.x
(``doubao-seedance-2-0-260128``). ``doubao-dreamina-...`` exists nowhere and is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
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
    max_keyframes: int | None = None  # keyframes between the ends; None: what the engine takes
    # the id as the client spelled it (ModelRegistry.get): the errors name what was sent
    sent_as: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return self.sent_as or self.id

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
                 "max_reference_videos", "max_reference_audio", "max_keyframes")


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


VOLCENGINE_PREFIX = "doubao-"
BYTEPLUS_2X_PREFIX = "dreamina-"


def volcengine_id(model_id: str) -> str:
    """Volcengine's spelling of a BytePlus id: ``doubao-`` replaces the 2.x ``dreamina-``
    and goes before any other id (Segue's own ids keep the rule they always had)."""
    return VOLCENGINE_PREFIX + model_id.removeprefix(BYTEPLUS_2X_PREFIX)


def is_vendor_id(model_id: str) -> bool:
    """A ByteDance model id, which Volcengine really names (Segue's own ids it does not)."""
    return model_id.startswith(("seedance-", BYTEPLUS_2X_PREFIX))


class ModelRegistry:
    def __init__(self, entries: list[ModelEntry]) -> None:
        self._entries = {e.id: e for e in entries}
        # a registry id wins over another entry's Volcengine spelling
        self._spellings = {volcengine_id(e.id): e for e in entries
                           if volcengine_id(e.id) not in self._entries}

    @classmethod
    def load(cls, path: Path | None = None) -> ModelRegistry:
        if path is None:
            text = resources.files("segue").joinpath("models.json").read_text()
        else:
            text = Path(path).read_text()
        return cls([_entry(raw) for raw in json.loads(text)["models"]])

    def get(self, model_id: str) -> ModelEntry:
        """The entry of ``model_id`` in either spelling, carrying the spelling sent."""
        entry = self._entries.get(model_id)
        if entry is not None:
            return entry
        entry = self._spellings.get(model_id)
        if entry is not None:
            return replace(entry, sent_as=model_id)
        hint = ""
        if model_id.startswith(VOLCENGINE_PREFIX + BYTEPLUS_2X_PREFIX):
            byteplus = model_id.removeprefix(VOLCENGINE_PREFIX)
            if byteplus in self._entries:
                hint = (f" Volcengine spells {byteplus} as {volcengine_id(byteplus)}"
                        " (doubao- in place of dreamina-).")
        raise NotFound(
            f"The model or endpoint {model_id} does not exist or you do not have access to it."
            + hint, code="InvalidEndpointOrModel.NotFound", param="model",
        )

    def volcengine_spelling(self, entry: ModelEntry) -> str | None:
        """The Volcengine id this entry answers to, where Volcengine names the model."""
        spelling = volcengine_id(entry.id)
        if is_vendor_id(entry.id) and self._spellings.get(spelling) is entry:
            return spelling
        return None

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries.values())

    @staticmethod
    def spellings(model_ids: Iterable[str]) -> list[str]:
        """Every id a task of these models may be stored under (tasks keep the id sent)."""
        return [spelling for m in model_ids for spelling in (m, volcengine_id(m))]
