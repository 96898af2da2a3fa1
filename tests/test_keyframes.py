"""The storyboard rules against each real engine (built, not loaded: no weights needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from segue.domain import KEYFRAME, GenerationRequest, ImageInput, Mode
from segue.engines.base import create_engine
from segue.errors import InvalidParameter
from segue.keyframes import check_keyframes, keyframe_limit
from segue.models import ModelRegistry

ENGINES = {
    "flow": ("flow", {}),
    "blend": ("blend", {}),
    "ltx": ("diffusion", {"family": "ltx", "model": "unused"}),
    "ltx2": ("diffusion", {"family": "ltx2", "model": "unused"}),
    "wan": ("diffusion", {"family": "wan", "variant": "flf2v", "model": "unused"}),
    "ark": ("ark", {"model": "seedance-1-0-lite-i2v-250428"}),
}
TAKES = {"flow": 16, "blend": 0, "ltx": 8, "ltx2": 0, "wan": 0, "ark": 0}


def storyboard(*times: float) -> GenerationRequest:
    images = (ImageInput("https://a.example/1.png", "first_frame"),
              *(ImageInput("https://a.example/k.png", KEYFRAME, t) for t in times),
              ImageInput("https://a.example/2.png", "last_frame"))
    return GenerationRequest(model="m", prompt="", mode=Mode.FIRST_LAST, images=images,
                             duration=5, frames=121)


@pytest.mark.parametrize("name", list(ENGINES))
def test_each_engine_takes_what_it_says_and_refuses_by_name(name: str) -> None:
    kind, options = ENGINES[name]
    engine = create_engine(kind, options)
    entry = replace(ModelRegistry.load().get("segue-flow"), engine=kind)
    if Mode.FIRST_LAST not in engine.modes:  # the Wan variants without a last frame
        pytest.skip("no first-and-last-frame mode")
    assert keyframe_limit(entry, engine) == TAKES[name]
    if TAKES[name]:
        check_keyframes(entry, engine, storyboard(*(0.25 * (i + 1) for i in range(TAKES[name]))))
        with pytest.raises(InvalidParameter, match=f"takes at most {TAKES[name]} keyframes"):
            check_keyframes(entry, engine, storyboard(
                *(0.25 * (i + 1) for i in range(TAKES[name] + 1))))
    else:
        with pytest.raises(InvalidParameter, match=f"by the {kind} engine, which cannot place"):
            check_keyframes(entry, engine, storyboard(2.0))


def test_a_registry_entry_may_lower_the_engine_limit() -> None:
    engine = create_engine("flow", {})
    entry = replace(ModelRegistry.load().get("segue-flow"), max_keyframes=2)
    assert keyframe_limit(entry, engine) == 2
    with pytest.raises(InvalidParameter, match="takes at most 2 keyframes .* got 3"):
        check_keyframes(entry, engine, storyboard(1.0, 2.0, 3.0))


def test_the_stored_request_round_trips_with_its_keyframes() -> None:
    request = storyboard(2.5, 1.0)
    data = request.to_json()
    assert data["keyframes"] == [
        {"time": 1.0, "frame": 24, "image_url": "https://a.example/k.png"},
        {"time": 2.5, "frame": 60, "image_url": "https://a.example/k.png"}]
    again = GenerationRequest.from_json(data)
    assert again == request and [k.time for k in again.keyframes] == [1.0, 2.5]
