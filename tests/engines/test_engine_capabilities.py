"""What engines declare: sound, draft settings, the length they choose for duration -1."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from segue.domain import Mode
from segue.engines.base import AUTO_SECONDS, RenderJob, auto_seconds, create_engine, makes_audio
from segue.engines.flow import FlowEngine
from segue.models import ModelRegistry
from segue.requests import build_request, fit_to_engine
from tests.conftest import scene


def _job(draft: bool) -> RenderJob:
    return RenderJob(prompt="", mode=Mode.FIRST_LAST, width=320, height=176, frames=9, seed=1,
                     first=scene(320, 176), last=scene(320, 176, shift=6), draft=draft)


def test_a_draft_renders_with_the_fast_preset() -> None:
    draft = list(FlowEngine(preset="high").render(_job(draft=True)))
    fast = list(FlowEngine(preset="fast").render(_job(draft=False)))
    high = list(FlowEngine(preset="high").render(_job(draft=False)))
    assert all(np.array_equal(a, b) for a, b in zip(draft, fast, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(draft, high, strict=True))


@pytest.mark.parametrize("name", ["flow", "blend"])
def test_cpu_engines_make_no_sound_and_choose_five_seconds(name: str) -> None:
    engine = create_engine(name)
    assert makes_audio(engine) is False and auto_seconds(engine) == AUTO_SECONDS == 5


def test_auto_duration_is_clamped_to_the_model_range() -> None:
    class Long(FlowEngine):
        auto_seconds = 40  # an engine that would like more than the model allows

    entry = ModelRegistry.load().get("dreamina-seedance-2-5-260628")
    request = build_request(entry, model=entry.id, text="x", images=[], fields={},
                            surface="ark")
    assert request.auto_duration and (request.duration, request.frames) == (5, 121)
    # the flow engine renders first+last only; the length is what is checked here
    fitted = fit_to_engine(entry, Long(), replace(request, mode=Mode.FIRST_LAST))
    assert (fitted.duration, fitted.frames) == (30, 721)
