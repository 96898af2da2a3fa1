"""Which hosts Segue may connect to: one policy for image downloads and callbacks.

A host is read the way the C resolver (``inet_aton``) reads it, so that no spelling of an
address slips past the check and is then resolved to it anyway: ``2130706433``,
``0x7f000001``, ``0177.0.0.1``, ``127.1`` and ``127.0.0.1.`` are all 127.0.0.1, and
``localhost`` (and any ``*.localhost``, RFC 6761) is loopback without asking DNS. IPv6
addresses that carry an IPv4 address (mapped, compatible, 6to4, Teredo, NAT64) are checked
as that IPv4 address too (a well-known-prefix NAT64 address as that address alone). A host
that is not ASCII is first mapped as IDNA (UTS #46) maps it: ``１２７。０。０。１`` is 127.0.0.1.

What can be decided from the spelling is decided at create time (``refused_literal``);
names are checked after each resolution (``first_refused``), and the connection then goes
to the checked address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

from segue.settings import Settings

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
}
# The NAT64 prefixes (RFC 6052's well-known one and RFC 8215's local-use one): the last
# 32 bits are the IPv4 address the gateway connects to.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT, RFC 2765
_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")
# inet_aton's forms: the last part fills the bytes the parts before it leave.
_LIMITS = {1: (0xFFFFFFFF,), 2: (0xFF, 0xFFFFFF), 3: (0xFF, 0xFF, 0xFFFF),
           4: (0xFF, 0xFF, 0xFF, 0xFF)}
ALLOW_SETTING = "SEGUE_ALLOW_PRIVATE_URLS"


class MalformedHost(ValueError):
    """A host spelled as a number that no resolver reads as an address (``1.2.3.999``)."""


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """``host`` as inet_aton reads it (decimal, 0x hex, 0 octal, 1 to 4 parts); None for a name."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMBER.match(part) for part in parts):
        # a name never ends in a number (the URL standard reads such a host as IPv4), so
        # 1.2.3.4.5 or example.123 can reach no one by name either
        if parts and _NUMBER.match(parts[-1]) and len(parts) > 1:
            raise MalformedHost(f"{host} is neither a name nor an IPv4 address")
        return None
    try:
        values = [int(part, 0) if part[:2].lower() == "0x" else
                  int(part, 8) if len(part) > 1 and part[0] == "0" else int(part)
                  for part in parts]
    except ValueError:  # 0x alone, or an 8 or 9 in an octal part
        raise MalformedHost(f"{host} is not a valid IPv4 address") from None
    if any(value > limit for value, limit in zip(values, _LIMITS[len(values)], strict=True)):
        raise MalformedHost(f"{host} is out of the IPv4 range")
    number = values[-1]
    for position, value in enumerate(values[:-1]):
        number += value << (24 - 8 * position)
    return ipaddress.IPv4Address(number)


def parse_host(host: str) -> IP | None:
    """The address a host names without DNS, or None for a name DNS must answer.

    Raises ``MalformedHost`` for a numeric spelling that is no address at all.
    """
    name = normalise(host).rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost" or name.endswith(".localhost"):
        return ipaddress.IPv4Address("127.0.0.1")
    if ":" in name:
        try:
            return ipaddress.IPv6Address(name)
        except ValueError:
            raise MalformedHost(f"{host} is not a valid IPv6 address") from None
    return _inet_aton(name)


def normalise(host: str) -> str:
    """``host`` as a resolver will look it up: lower case and, where it is not ASCII, mapped
    as IDNA (UTS #46) maps it, which is what URL parsers and ``getaddrinfo`` do before they
    resolve. So ``１２７。０。０。１`` (fullwidth digits, ideographic full stops) is 127.0.0.1
    here too, decided at create rather than found when the fetch resolves it."""
    name = host.strip()
    if not name.isascii():
        import idna  # httpx's own dependency; only a non-ASCII host needs it

        try:
            name = idna.uts46_remap(name, std3_rules=False, transitional=False)
        except (idna.IDNAError, ValueError) as exc:
            raise MalformedHost(f"{host} is not a valid host name ({exc})") from None
    return name.lower()


def embedded_ipv4(ip: IP) -> Iterator[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries, by the conventions that route to it."""
    if isinstance(ip, ipaddress.IPv4Address):
        return
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        yield ip.ipv4_mapped
    if ip.sixtofour is not None:
        yield ip.sixtofour
    if ip.teredo is not None:
        yield from ip.teredo
    if int(ip) > 1 and (ip in IPV4_COMPATIBLE or ip in IPV4_TRANSLATED
                        or any(ip in net for net in NAT64)):
        yield low32


def is_forbidden_address(ip: IP) -> bool:
    """Loopback, private, link-local, multicast, reserved, unspecified or cloud metadata."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip in METADATA_ADDRESSES
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
        # fec0::/10, deprecated (RFC 3879) but still routed inside some sites; Python
        # counts it as global
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def refused_by(ip: IP, settings: Settings) -> IP | None:
    """The address that makes ``ip`` refused (``ip`` itself or an IPv4 address it carries),
    or None when Segue may connect to it.

    Cloud metadata stays refused even when the operator allows private addresses
    (SEGUE_ALLOW_PRIVATE_URLS), since it holds credentials.
    """
    candidates = [ip, *embedded_ipv4(ip)]
    if ip in NAT64[0]:
        # The well-known NAT64 prefix only reaches the IPv4 address it carries, so that
        # address decides: Python counts the whole prefix as reserved, which refused every
        # public address behind a NAT64 gateway.
        candidates = candidates[1:] or candidates
    for candidate in candidates:
        if candidate in METADATA_ADDRESSES:
            return candidate
        if not settings.allow_private_urls and is_forbidden_address(candidate):
            return candidate
    return None


def refused(ip: IP, settings: Settings) -> bool:
    return refused_by(ip, settings) is not None


def refused_literal(host: str, settings: Settings) -> str | None:
    """The address ``host`` spells when Segue may not connect to it; None for an allowed
    address or a name (names are checked once resolved). Raises ``MalformedHost``."""
    address = parse_host(host)
    culprit = refused_by(address, settings) if address is not None else None
    if culprit is None or address is None:
        return None
    return str(address) if culprit == address else f"{address} (which carries {culprit})"


def first_refused(addresses: Iterable[str], settings: Settings) -> str | None:
    """The first resolved address Segue may not connect to, or None."""
    for address in addresses:
        if refused(ipaddress.ip_address(address.split("%")[0]), settings):
            return address
    return None


def refusal(host: str, address: str) -> str:
    """Why a host is refused, and what an operator can do about it."""
    spelled = "is" if parse_host(host) is not None else "resolves to"
    return (f"the host {host} {spelled} {address}, a loopback, private, link-local or metadata "
            f"address; such URLs are refused unless the operator sets {ALLOW_SETTING}=true "
            "(metadata addresses stay refused even then).")


def canonical_url(url: str) -> str:
    """``url`` with a numeric host written the standard way, so that it can be sent.

    ``http://0177.0.0.1:9/x`` becomes ``http://127.0.0.1:9/x``, the address a resolver would
    connect to; any other URL comes back unchanged. Raises ``MalformedHost``.
    """
    parts = urlsplit(url)
    host = parts.hostname
    # only numbers are rewritten: a name (localhost too) keeps its Host header and TLS name
    if not host or not host[0].isdigit():
        return url
    address = parse_host(host)
    if address is None or host == str(address):
        return url
    netloc = str(address) if parts.port is None else f"{address}:{parts.port}"
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}" if userinfo else netloc))


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (one DNS query; the caller connects to these)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
