"""Text commands, defaults, precedence and the size/frame/token tables."""

from __future__ import annotations

import pytest

from segue.commands import parse_commands
from segue.domain import SIZES, ImageInput, Mode, frames_for, nearest_ratio, tokens_for
from segue.errors import InvalidParameter, NotFound
from segue.models import ModelRegistry
from segue.requests import build_request, detect_mode

REG = ModelRegistry.load()
FL = [ImageInput("data:x", "first_frame"), ImageInput("data:y", "last_frame")]


def build(text: str = "", model: str = "seedance-1-0-lite-i2v-250428", images=FL,
          surface: str = "ark", **fields: object):  # type: ignore[no-untyped-def]
    return build_request(REG.get(model), model=model, text=text, images=images, fields=fields,
                         surface=surface)


def test_both_spellings_are_parsed_and_removed() -> None:
    short = "A plane takes off --rs 480p --rt 4:3 --dur 7 --fps 24 --wm true --seed 11 --cf false"
    long = ("A plane takes off --resolution 480p --ratio 4:3 --duration 7 --framespersecond 24 "
            "--watermark true --seed 11 --camerafixed false")
    for text in (short, long):
        prompt, settings, _ = parse_commands(text)
        assert prompt == "A plane takes off"
        assert settings == {"resolution": "480p", "ratio": "4:3", "duration": 7,
                            "framespersecond": 24, "watermark": True, "seed": 11,
                            "camerafixed": False}


def test_unknown_flags_stay_in_the_prompt() -> None:
    prompt, settings, _ = parse_commands("style --vivid colours --rs 720p end")
    assert prompt == "style --vivid colours end" and settings == {"resolution": "720p"}


def test_body_field_wins_over_command_and_null_is_absent() -> None:
    req = build("x --rs 480p --dur 3", resolution="1080p", duration=None)
    assert req.resolution == "1080p" and req.duration == 3 and req.frames == 73


def test_defaults_follow_the_model_and_mode() -> None:
    lite = build()
    assert (lite.resolution, lite.ratio, lite.duration, lite.frames) == ("720p", "adaptive", 5, 121)
    assert 0 <= lite.seed <= 2**32 - 1  # -1/absent is resolved to a stored random seed
    pro = build(model="seedance-1-0-pro-250528")
    assert pro.resolution == "1080p"
    assert not lite.watermark and not lite.camera_fixed and not lite.return_last_frame
    assert lite.execution_expires_after == 172800 and lite.service_tier == "default"


def test_frames_win_over_duration() -> None:
    req = build("x --dur 5", frames=29)
    assert req.frames == 29 and req.duration is None


@pytest.mark.parametrize("surface,low", [("ark", 2), ("pixazo", 3)])
def test_duration_ranges_per_surface(surface: str, low: int) -> None:
    assert build(surface=surface, duration=low).frames == 24 * low + 1
    assert build(surface=surface, duration=12).frames == 289
    with pytest.raises(InvalidParameter):
        build(surface=surface, duration=low - 1)


def test_invalid_command_value_names_the_command() -> None:
    with pytest.raises(InvalidParameter) as err:
        build("x --dur 40")
    assert err.value.param == "--dur"
    with pytest.raises(InvalidParameter) as err:
        build(duration=40)
    assert err.value.param == "duration"


def test_mode_rules() -> None:
    assert detect_mode([]) is Mode.TEXT
    assert detect_mode([ImageInput("u", "")]) is Mode.FIRST_FRAME
    assert detect_mode(FL) is Mode.FIRST_LAST
    assert detect_mode([ImageInput("u", "reference_image")] * 4) is Mode.REFERENCE
    for bad in ([ImageInput("u", ""), ImageInput("v", "")],
                [ImageInput("u", "first_frame"), ImageInput("v", "reference_image")],
                [ImageInput("u", "reference_image")] * 5):
        with pytest.raises(InvalidParameter):
            detect_mode(bad)


def test_reference_mode_rules() -> None:
    refs = [ImageInput("u", "reference_image")]
    assert build(images=refs).ratio == "16:9"
    with pytest.raises(InvalidParameter):
        build(images=refs, resolution="1080p")
    with pytest.raises(InvalidParameter):
        build(images=refs, camerafixed=True)
    with pytest.raises(InvalidParameter):
        build(images=refs, ratio="adaptive")


def test_size_table_frames_and_tokens() -> None:
    assert SIZES["720p"]["16:9"] == (1248, 704) and SIZES["1080p"]["21:9"] == (2176, 928)
    assert all(w % 16 == 0 and h % 16 == 0 for r in SIZES.values() for w, h in r.values())
    assert frames_for(5) == 121 and frames_for(2) == 49 and frames_for(12) == 289
    assert tokens_for(1248, 704, 121) == 103818
    assert tokens_for(1920, 1088, 121) == 246840


@pytest.mark.parametrize("aspect,ratio", [
    (16 / 9, "16:9"), (1.0, "1:1"), (4 / 3, "4:3"), (0.5625, "9:16"), (2.4, "21:9"),
    (0.75, "3:4"), (1.5, "4:3"), (1.6, "16:9"),
])
def test_adaptive_ratio_picks_the_nearest(aspect: float, ratio: str) -> None:
    assert nearest_ratio(aspect) == ratio


def test_doubao_ids_resolve() -> None:
    assert REG.get("doubao-seedance-1-0-pro-250528").id == "seedance-1-0-pro-250528"


SPEC_IDS = ("seedance-1-0-lite-i2v-250428", "seedance-1-0-lite-t2v-250428",
            "seedance-1-0-pro-250528", "seedance-1-0-pro-fast-251015", "seedance-1-5-pro-251215",
            "dreamina-seedance-2-0-260128", "dreamina-seedance-2-0-fast-260128",
            "dreamina-seedance-2-0-mini-260615", "dreamina-seedance-2-5-260628",
            "dreamina-seedance-2-5-flash-261115")


@pytest.mark.parametrize("model_id", SPEC_IDS)
def test_every_public_id_and_its_doubao_spelling(model_id: str) -> None:
    entry = REG.get(model_id)
    # Volcengine: doubao- before a 1.x id, in place of dreamina- for 2.x
    volcengine = "doubao-" + model_id.removeprefix("dreamina-")
    assert REG.get(volcengine) == entry and REG.get(volcengine).name == volcengine
    assert entry.name == model_id and entry.engine == "flow"
    if model_id.startswith("dreamina-"):
        with pytest.raises(NotFound, match="doubao-dreamina-"):
            REG.get("doubao-" + model_id)  # an id that exists nowhere
    assert entry.resolution in entry.resolutions
    assert entry.min_duration <= max(entry.default_duration, entry.min_duration)


def test_drafts_default_to_480p_and_only_where_offered() -> None:
    req = build(model="seedance-1-5-pro-251215", draft=True)
    assert req.draft and req.resolution == "480p"
    with pytest.raises(InvalidParameter) as err:
        build("x --rs 720p", model="seedance-1-5-pro-251215", draft=True)
    assert err.value.code == "InvalidResolutionParameter" and err.value.param == "--rs"
    with pytest.raises(InvalidParameter, match="does not offer drafts"):
        build(model="dreamina-seedance-2-5-flash-261115", draft=True)


def test_2_5_defaults_to_auto_duration_and_adaptive_ratio() -> None:
    req = build(model="dreamina-seedance-2-5-260628")
    assert req.auto_duration and (req.duration, req.frames) == (5, 121)
    assert req.ratio == "adaptive"
    refs = [ImageInput("u", "reference_image")] * 9
    assert build(model="dreamina-seedance-2-5-260628", images=refs, ratio="4:3").ratio == "4:3"
    with pytest.raises(InvalidParameter, match="1-9"):
        build(model="dreamina-seedance-2-0-260128", images=refs * 2)


def test_pixazo_keeps_its_floor_and_new_models_their_ranges() -> None:
    assert build(model="dreamina-seedance-2-5-260628", surface="pixazo", duration=30).frames == 721
    with pytest.raises(InvalidParameter, match="4 and 30"):
        build(model="dreamina-seedance-2-5-260628", surface="pixazo", duration=3)


def test_registry_file_is_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "models.json"
    path.write_text('{"models": [{"id": "m", "engine": "flow", "modes": ["text"], '
                    '"resolutions": ["480p", "8k"]}]}')
    with pytest.raises(ValueError, match="8k"):
        ModelRegistry.load(path)
    path.write_text('{"models": [{"id": "m", "engine": "flow", "modes": ["text"], '
                    '"resolutions": ["480p"], "resolution": "720p"}]}')
    with pytest.raises(ValueError, match="default resolution"):
        ModelRegistry.load(path)


V15 = "seedance-1-5-pro-251215"


def test_generate_audio_is_parsed_kept_and_refused_for_engines_without_sound() -> None:
    from segue.domain import GenerationRequest
    from segue.requests import check_audio

    entry = REG.get(V15)  # a model with audio; the engine decides
    assert build(model=V15).generate_audio is False
    loud = build(model=V15, generate_audio=True)
    assert loud.generate_audio is True
    assert GenerationRequest.from_json(loud.to_json()) == loud
    old = {k: v for k, v in loud.to_json().items() if k != "generate_audio"}
    assert GenerationRequest.from_json(old).generate_audio is False  # tasks stored before
    check_audio(entry, True, loud)
    check_audio(entry, False, build(model=V15))
    with pytest.raises(InvalidParameter, match="makes no sound") as info:
        check_audio(entry, False, loud)
    assert info.value.param == "generate_audio"
    with pytest.raises(InvalidParameter, match="generate_audio"):
        build(model=V15, generate_audio="loud")
