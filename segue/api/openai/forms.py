"""Read a ``POST /v1/videos`` body, JSON or multipart, into one plain dict.

The official ``openai`` client sends multipart whenever it creates a video, and
flattens nested ``extra_body`` values PHP-style: ``frame_images[][image_url][url]``.
This module undoes that flattening; an uploaded ``input_reference`` file becomes a
``data:`` URL, so that it meets the same image rules as on every other surface.
"""

from __future__ import annotations

import base64
import io
import json
import re
from typing import Any

from fastapi import Request
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile

from segue.errors import BadRequest, InvalidImage, InvalidParameter

_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[A-Za-z0-9_]*\])*)$")
MAX_FIELDS = 200


async def read_body(request: Request, booleans: frozenset[str] = frozenset()
                    ) -> dict[str, Any]:
    """The body as a dict; in a form, the fields named in ``booleans`` that say ``true`` or
    ``false`` (text, as the ``openai`` client writes them) become JSON booleans."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        # a form field may hold a data URL: allow parts as large as the body limit
        limit = request.app.state.services.settings.max_body_bytes
        form = await request.form(max_files=4, max_fields=MAX_FIELDS, max_part_size=limit)
        items: list[tuple[str, Any]] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                items.append((key, _data_url(key, await value.read(), value.content_type)))
            elif key in booleans and value in ("true", "false"):
                items.append((key, value == "true"))
            else:
                items.append((key, value))
        return unflatten(items)
    if kind not in ("", "application/json"):
        raise BadRequest(f"The Content-Type {kind} is not accepted: send application/json or "
                         "multipart/form-data.", param="Content-Type")
    try:
        body = json.loads(await request.body())
    except RecursionError:  # nested deeper than Python's parser goes: a 400, not a 500
        raise BadRequest("The request body is nested too deeply.", param="body") from None
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise BadRequest("The request body is not a valid JSON object.", param="body")
    return body


def _data_url(param: str, data: bytes, content_type: str | None) -> str:
    """An uploaded image as a data URL; its format is read from its header, not trusted."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = (image.format or "").lower()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(param, "InvalidFormat",
                           f"the uploaded file ({content_type or 'no type'}) is not a readable "
                           "image.") from exc
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"


def unflatten(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """``a[b]=1``, ``l[][x]=1``, ``l[][x]=2`` -> ``{"a": {"b": 1}, "l": [{"x": 1}, {"x": 2}]}``.

    Items of a list are told apart only by order, so each item should carry the same
    fields (as the official client sends them); a client free to choose can send JSON.

    A field whose value is a JSON array or object (``frame_images='[...]'`` from curl) is
    read as JSON.
    """
    out: dict[str, Any] = {}
    for key, value in items:
        match = _KEY.match(key)
        if match is None:
            raise InvalidParameter(key, "is not a form field name this route understands.")
        path = [match[1], *re.findall(r"\[([A-Za-z0-9_]*)\]", match[2])]
        if isinstance(value, str) and len(path) == 1 and value.lstrip()[:1] in ("[", "{"):
            value = _json(key, value)
        _put(out, path, value, key)
    return out


def _json(key: str, value: str) -> Any:
    try:
        return json.loads(value)
    except RecursionError:
        raise InvalidParameter(key, "is JSON nested too deeply.") from None
    except ValueError:
        raise InvalidParameter(key, "looks like JSON but does not parse.") from None


def _put(node: dict[str, Any], path: list[str], value: Any, key: str) -> None:
    head, rest = path[0], path[1:]
    if not rest:
        if head in node:
            raise InvalidParameter(key, "is given more than once.")
        node[head] = value
        return
    if rest[0] == "":  # a list
        items = node.setdefault(head, [])
        if not isinstance(items, list):
            raise InvalidParameter(key, "mixes a list with a single value.")
        if len(rest) == 1:
            items.append(value)
            return
        # The n-th value of a field belongs to the n-th item: httpx sends the values of one
        # field together (l[][x]=1, l[][x]=2, l[][y]=3, l[][y]=4), not item by item.
        item = next((i for i in items if isinstance(i, dict) and not _has(i, rest[1:])), None)
        if item is None:
            item = {}
            items.append(item)
        _put(item, rest[1:], value, key)
        return
    child = node.setdefault(head, {})
    if not isinstance(child, dict):
        raise InvalidParameter(key, "mixes an object with a single value.")
    _put(child, rest, value, key)


def _has(node: dict[str, Any], path: list[str]) -> bool:
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
