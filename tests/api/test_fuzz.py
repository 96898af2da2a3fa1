"""Bounded fuzzing: random mutations of valid requests never produce a 500 or lose data."""

from __future__ import annotations

import random

from tests.api.test_errors import ARK, PIX, ark_body, pix_body
from tests.conftest import LiveServer

VALUES = [None, True, False, 0, -1, 1.5, 2**40, "", "x", "720p", "--rs", "\u0000", "☃" * 50,
          [], [1], {}, {"url": 5}, "data:image/png;base64,", "http://[::1", "http://example"]
ROUNDS = 250


def mutate(body: object, rng: random.Random, depth: int = 0) -> object:
    if isinstance(body, dict):
        out = dict(body)
        for key in list(out):
            roll = rng.random()
            if roll < 0.15:
                del out[key]
            elif roll < 0.4:
                out[key] = rng.choice(VALUES)
            elif depth < 3:
                out[key] = mutate(out[key], rng, depth + 1)
        if rng.random() < 0.2:
            out[rng.choice(["extra", "frames", "seed", "ratio", "role"])] = rng.choice(VALUES)
        return out
    if isinstance(body, list):
        items = [mutate(i, rng, depth + 1) for i in body]
        if items and rng.random() < 0.2:
            items.pop(rng.randrange(len(items)))
        return items
    if isinstance(body, str) and rng.random() < 0.5:
        return body + rng.choice([" --dur 99", " --cf x", " --rs", " --seed -7", "\n--rt 1:1"])
    return body


def test_random_bodies_get_documented_errors(server: LiveServer) -> None:
    rng = random.Random(20251125)
    seen: set[int] = set()
    with server.client() as ark, server.client(pixazo=True) as pix:
        for _ in range(ROUNDS):
            if rng.random() < 0.5:
                client, path, body = ark, ARK, mutate(ark_body("x --rs 480p --dur 2"), rng)
            else:
                client, path, body = pix, PIX, mutate(pix_body(text="x --rs 480p --dur 3"), rng)
            r = client.post(path, json=body)
            seen.add(r.status_code)
            assert r.status_code in (200, 400, 404), (body, r.text)
            payload = r.json()
            if r.status_code != 200:
                code = payload["code"] if path == PIX else payload["error"]["code"]
                assert code and "Request id:" in str(payload)
        for _ in range(50):
            query = rng.choice(["page_num", "page_size", "filter.status", "filter.task_ids"])
            r = ark.get(ARK, params={query: str(rng.choice(VALUES))})
            assert r.status_code in (200, 400), r.text
    assert 400 in seen and 200 in seen
    # every accepted task is stored and readable; the store is intact
    with server.client() as c:
        listing = c.get(ARK, params={"page_size": 500}).json()
    assert listing["total"] == len(listing["items"])
