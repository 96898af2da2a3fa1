"""Downloads of input images, guarded against server-side request forgery.

Every hop of a redirect chain is resolved here, every address it resolves to is checked, and
the connection goes to the checked address (so a DNS answer cannot change between the check
and the connect). Kept apart from ``images`` so that only a download imports httpx.
"""

from __future__ import annotations

import time

import httpx

from segue.errors import InvalidImage
from segue.media.addresses import canonical_url, first_refused, refusal, resolve
from segue.media.images import too_large, url_host
from segue.settings import Settings

_REDIRECTS = {301, 302, 303, 307, 308}


def _addresses(url: httpx.URL, param: str, settings: Settings) -> list[str]:
    """Resolve the URL's host and refuse it when any of its addresses is forbidden."""
    try:
        addresses = resolve(url.host, url.port or (443 if url.scheme == "https" else 80))
    except (OSError, UnicodeError) as exc:
        raise InvalidImage(param, "Unreachable", f"the host {url.host} does not resolve.") from exc
    address = first_refused(addresses, settings)
    if address is not None:
        raise InvalidImage(param, "Forbidden", refusal(url.host, address))
    return addresses


def fetch(url: str, param: str, settings: Settings, deadline: float | None = None) -> bytes:
    """Download ``url`` with the byte cap, the timeouts and a checked, bounded redirect chain;
    done by ``deadline`` (``time.monotonic()``) too when one is given: the task's, shared by
    all its inputs."""
    own = time.monotonic() + settings.image_total_timeout
    deadline = own if deadline is None else min(own, deadline)
    current = _parse_url(url, param)
    for _hop in range(settings.image_max_redirects + 1):
        location = _fetch_hop(current, param, settings, deadline)
        if isinstance(location, bytes):
            return location
        current = _parse_url(str(current.join(location)), param)
    raise InvalidImage(
        param,
        "Unreachable",
        f"the URL redirects more than {settings.image_max_redirects} times.",
    )


def _parse_url(url: str, param: str) -> httpx.URL:
    try:
        parsed = httpx.URL(canonical_url(url))  # 0177.0.0.1 is sent as 127.0.0.1
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidImage(param, "InvalidFormat", f"the URL {url!r} is malformed.") from exc
    if parsed.scheme not in ("http", "https"):
        raise InvalidImage(
            param, "InvalidFormat", f"the URL {url!r} is not http or https (after a redirect?)."
        )
    url_host(str(parsed), param)
    return parsed


def _remaining(deadline: float, param: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise InvalidImage(param, "Unreachable", "the download took longer than allowed.")
    return left


def _client() -> httpx.Client:
    return httpx.Client(follow_redirects=False, trust_env=False)


def _fetch_hop(url: httpx.URL, param: str, settings: Settings, deadline: float) -> bytes | str:
    """One request pinned to a checked address: the body, or the Location of a redirect.

    Each attempt gets its own client, so no pooled connection (or TLS session made for
    another name) is ever reused. Proxies from the environment are ignored on purpose:
    through a proxy the address check would mean nothing.
    """
    addresses = _addresses(url, param, settings)
    failure: Exception | None = None
    for address in addresses:
        left = _remaining(deadline, param)
        timeout = httpx.Timeout(left, connect=min(settings.image_connect_timeout, left))
        with _client() as client:
            result = _attempt(client, url, address, timeout, param, settings, deadline)
        if not isinstance(result, Exception):
            return result
        failure = result  # could not connect: try the host's next address
    raise InvalidImage(param, "Unreachable", _failed(url, failure)) from failure


def _attempt(
    client: httpx.Client,
    url: httpx.URL,
    address: str,
    timeout: httpx.Timeout,
    param: str,
    settings: Settings,
    deadline: float,
) -> bytes | str | httpx.ConnectError:
    request = client.build_request(
        "GET",
        url.copy_with(host=address),
        headers={"Host": url.netloc.decode("ascii"), "Accept": "image/*"},
        timeout=timeout,
        extensions={"sni_hostname": url.host},  # TLS checks the name, not the address
    )
    try:
        response = client.send(request, stream=True)
    except httpx.ConnectError as exc:
        return exc
    except httpx.HTTPError as exc:
        raise InvalidImage(param, "Unreachable", _failed(url, exc)) from exc
    try:
        return _read(response, url, param, settings, deadline)
    finally:
        response.close()


def _failed(url: httpx.URL, exc: Exception | None) -> str:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return f"the download of {url.host} {kind} ({type(exc).__name__}: {exc})."


def _read(
    response: httpx.Response, url: httpx.URL, param: str, settings: Settings, deadline: float
) -> bytes | str:
    if response.status_code in _REDIRECTS:
        location = response.headers.get("location")
        if not location:
            raise InvalidImage(param, "Unreachable", "a redirect came without a Location.")
        return location
    if response.status_code != 200:
        raise InvalidImage(
            param, "Unreachable", f"{url.host} answered HTTP {response.status_code}."
        )
    cap = settings.image_max_bytes
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise InvalidImage(param, "TooLarge", too_large(int(declared), cap))
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > cap:
                raise InvalidImage(param, "TooLarge", f"the image is more than {cap} bytes.")
            _remaining(deadline, param)
    except httpx.HTTPError as exc:
        raise InvalidImage(param, "Unreachable", _failed(url, exc)) from exc
    if not body:
        raise InvalidImage(param, "InvalidFormat", f"{url.host} answered an empty body.")
    return bytes(body)
