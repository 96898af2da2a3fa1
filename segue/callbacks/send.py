"""One callback exchange over HTTP, to a checked address, within one deadline."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

import httpx

from segue.errors import InvalidParameter
from segue.media.addresses import (
    MalformedHost,
    canonical_url,
    first_refused,
    refusal,
    refused_literal,
    resolve,
)
from segue.settings import Settings


class Refused(Exception):
    """A delivery that must not be retried (a forbidden address, a broken secret)."""


def check_callback_url(url: str | None, settings: Settings) -> None:
    """Create-time check: an IP literal in a private range is refused before the task exists.

    Names are resolved (and checked) at each delivery, as image URLs are.
    """
    if url is None:
        return
    try:
        host = urlsplit(url).hostname
    except ValueError:
        raise InvalidParameter("callback_url", f"the URL {url!r} is malformed.") from None
    if not host:
        raise InvalidParameter("callback_url", f"the URL {url!r} names no host.")
    try:
        literal = refused_literal(host, settings)
        httpx.URL(canonical_url(url))  # what the sender will parse: refuse now what it cannot
    except MalformedHost as exc:
        raise InvalidParameter("callback_url", f"the URL's host {exc}.") from None
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidParameter("callback_url", f"the URL {url!r} is malformed ({exc}).") from None
    if literal is not None:
        raise InvalidParameter("callback_url", refusal(host, literal))


class Deadline:
    """Ends an exchange that outlives ``seconds`` by shutting its socket down.

    httpx's timeouts bound each network operation, not their sum: a receiver that sends a
    byte of its status line or headers now and then held an exchange, and a send slot, for
    minutes. The socket is the one httpx opens (its trace hook hands it over here);
    shutting it down wakes a blocked read or write at once, where closing it from another
    thread would not.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: remember the connection's socket once it is open."""
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            self._socket = sock
            if self.expired:  # connected just after the deadline
                self._shut()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shut()

    def _shut(self) -> None:
        if self._socket is not None:
            with suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)


def post(url: str, body: str, headers: dict[str, str], settings: Settings) -> int:
    """POST to an address checked after resolution (the connection is pinned to it).

    Redirects are not followed. ``settings.callback_timeout`` bounds the whole exchange:
    connecting, sending, and receiving the answer's status line and headers (its body is
    never read); past it, ``httpx.TimeoutException``. Returns the HTTP status.
    """
    try:
        target = httpx.URL(canonical_url(url))
    except (httpx.InvalidURL, ValueError) as exc:  # MalformedHost is a ValueError
        raise Refused(f"the callback URL {url!r} cannot be sent ({exc}).") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise Refused(f"the callback URL {url!r} is not an http or https URL.")
    port = target.port or (443 if target.scheme == "https" else 80)
    started = time.monotonic()
    try:
        addresses = resolve(target.host, port)
    except (OSError, UnicodeError) as exc:
        raise httpx.ConnectError(f"the host {target.host} does not resolve") from exc
    address = first_refused(addresses, settings)
    if address is not None:
        raise Refused(refusal(target.host, address))
    left = max(0.001, settings.callback_timeout - (time.monotonic() - started))
    with Deadline(left) as deadline, httpx.Client(
            follow_redirects=False, trust_env=False, timeout=left) as client:
        request = client.build_request(
            "POST", target.copy_with(host=addresses[0]), content=body.encode(),
            headers={**headers, "Host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": target.host, "trace": deadline.trace},
        )
        try:
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            if deadline.expired:
                raise httpx.ReadTimeout("the exchange outlived its deadline") from exc
            raise
        response.close()
        return response.status_code
