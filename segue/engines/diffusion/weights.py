"""Where a model's weights are: a diffusers folder under SEGUE_MODELS_DIR, or a hub id."""

from __future__ import annotations

from pathlib import Path

from segue.errors import ModelNotOpen


def find_weights(
    name: str, models_dir: str | None, local_only: bool, what: str = "diffusion model",
    markers: tuple[str, ...] = ("model_index.json",),
) -> str:
    """A local diffusers folder if there is one, else the hub id (unless local_only)."""
    path = Path(name).expanduser()
    looked = []
    candidates = [path] if path.is_absolute() or name.startswith((".", "~")) else []
    if not candidates and models_dir:
        candidates = [Path(models_dir) / name]
    for candidate in candidates:
        looked.append(str(candidate))
        if any((candidate / marker).is_file() for marker in markers):
            return str(candidate)
    if candidates and (path.is_absolute() or local_only):
        raise ModelNotOpen(
            f"The {what} {name!r} was not found: no diffusers folder "
            f"(with {' or '.join(markers)}) at {', '.join(looked)}. Download it into "
            "SEGUE_MODELS_DIR (see docs/gpu.md) or correct the model registry."
        )
    if local_only:
        raise ModelNotOpen(
            f"The {what} {name!r} is not a local folder, SEGUE_MODELS_DIR is "
            "not set and hub downloads are off (local_only). Set SEGUE_MODELS_DIR."
        )
    return name
