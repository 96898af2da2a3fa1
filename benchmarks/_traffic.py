"""The clients of ``scale.py``: creates and polls through the API, open loop, at set rates.

Requests go out on a schedule (``rate`` a second), whatever the answers' speed, as many
independent clients would send them; each takes an idle keep-alive connection of its key
or opens one. The HTTP client is ``load.py``'s minimal one, so that the client costs
little beside the server on the same cores.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field

from benchmarks._cluster import CREATE_BODY, TASKS
from benchmarks.load import Connection


@dataclass
class Traffic:
    """What one level's clients met: (wall-clock end, seconds) per request."""

    creates: list[tuple[float, float]] = field(default_factory=list)
    polls: list[tuple[float, float]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    created: list[tuple[str, str]] = field(default_factory=list)  # (task id, key)


class Clients:
    """Creates at ``create_rate`` and polls at ``poll_rate`` a second until stopped; polls
    ask about tasks created in this run, chosen at random among the newest ``recent``."""

    def __init__(self, port: int, keys: list[str], create_rate: float, poll_rate: float,
                 recent: int) -> None:
        self.port, self.keys = port, keys
        self.create_rate, self.poll_rate, self.recent = create_rate, poll_rate, recent
        self.traffic = Traffic()
        self._idle: dict[str, list[Connection]] = {k: [] for k in keys}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Clients:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)

    async def _main(self) -> None:
        pending: set[asyncio.Task[None]] = set()
        await asyncio.gather(self._schedule(self.create_rate, self._create, pending),
                             self._schedule(self.poll_rate, self._poll, pending))
        if pending:
            await asyncio.wait(pending, timeout=60)
        for conns in self._idle.values():
            for conn in conns:
                conn.close()

    async def _schedule(self, rate: float, send, pending: set) -> None:  # type: ignore[no-untyped-def]
        begun, n = time.monotonic(), 0
        while not self._stop.is_set():
            n += 1
            await asyncio.sleep(max(0.0, begun + n / rate - time.monotonic()))
            task = asyncio.ensure_future(send())
            pending.add(task)
            task.add_done_callback(pending.discard)

    async def _request(self, kind: str, key: str, method: str, path: str,
                       body: bytes = b"") -> bytes | None:
        idle = self._idle[key]
        # an idle connection may have been closed by the server meanwhile (its keep-alive
        # timeout): then the request goes again on a new one
        for conn in ([idle.pop()] if idle else []) + [None]:
            conn = conn or Connection(self.port, {"Authorization": f"Bearer {key}"})
            started = time.perf_counter()
            try:
                status, payload = await conn.request(method, path, body)
            except (OSError, asyncio.IncompleteReadError):
                conn.close()
                continue
            took = time.perf_counter() - started
            idle.append(conn)
            if status != 200:
                self._error(f"{kind}: {status}")
                return None
            getattr(self.traffic, kind).append((time.time(), took))
            return payload
        self._error(f"{kind}: connection")
        return None

    def _error(self, what: str) -> None:
        self.traffic.errors[what] = self.traffic.errors.get(what, 0) + 1

    async def _create(self) -> None:
        key = random.choice(self.keys)
        payload = await self._request("creates", key, "POST", TASKS,
                                      json.dumps(CREATE_BODY).encode())
        if payload is not None:
            self.traffic.created.append((json.loads(payload)["id"], key))

    async def _poll(self) -> None:
        created = self.traffic.created
        if not created:
            return
        task_id, key = random.choice(created[-self.recent:])
        await self._request("polls", key, "GET", f"{TASKS}/{task_id}")
