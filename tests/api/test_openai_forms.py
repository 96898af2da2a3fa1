"""Multipart fields flattened by the ``openai`` client, read back into nested values."""

from __future__ import annotations

import pytest

from segue.api.openai.forms import unflatten
from segue.errors import InvalidParameter


def test_brackets_become_lists_of_objects() -> None:
    got = unflatten([
        ("prompt", "p"),
        ("frame_images[][type]", "image_url"),
        ("frame_images[][image_url][url]", "data:a"),
        ("frame_images[][frame_type]", "first_frame"),
        ("frame_images[][type]", "image_url"),
        ("frame_images[][image_url][url]", "data:b"),
        ("frame_images[][frame_type]", "last_frame"),
        ("input_reference[image_url]", "http://x/a.png"),
        ("tags[]", "a"), ("tags[]", "b"),
    ])
    assert got == {
        "prompt": "p",
        "frame_images": [
            {"type": "image_url", "image_url": {"url": "data:a"}, "frame_type": "first_frame"},
            {"type": "image_url", "image_url": {"url": "data:b"}, "frame_type": "last_frame"}],
        "input_reference": {"image_url": "http://x/a.png"},
        "tags": ["a", "b"],
    }


def test_values_grouped_by_field_fill_the_items_in_order() -> None:
    # what httpx sends for two items when no file is attached
    got = unflatten([("l[][u]", "a"), ("l[][u]", "b"), ("l[][t]", "first"), ("l[][t]", "last")])
    assert got == {"l": [{"u": "a", "t": "first"}, {"u": "b", "t": "last"}]}


def test_a_json_valued_field_is_read_as_json() -> None:
    got = unflatten([("frame_images", '[{"image_url": "u", "frame_type": "last_frame"}]')])
    assert got == {"frame_images": [{"image_url": "u", "frame_type": "last_frame"}]}


@pytest.mark.parametrize("items, param", [
    ([("a", "1"), ("a", "2")], "a"),
    ([("a", "1"), ("a[b]", "2")], "a[b]"),
    ([("a[b]", "1"), ("a[]", "2")], "a[]"),
    ([("bad key", "1")], "bad key"),
    ([("frame_images", "[not json")], "frame_images"),
])
def test_conflicting_or_unreadable_fields_are_400_naming_them(items, param) -> None:
    with pytest.raises(InvalidParameter) as err:
        unflatten(items)
    assert err.value.param == param
