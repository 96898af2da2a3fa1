"""Every spelling of an address is read as a resolver reads it, and refused where it must be."""

from __future__ import annotations

import pytest

from segue.errors import InvalidImage
from segue.media.addresses import MalformedHost, canonical_url, parse_host, refused_literal
from segue.media.images import check_image_reference
from segue.settings import Settings

STRICT = Settings(allow_private_urls=False)
ALLOWED = Settings(allow_private_urls=True)

# (host as written, the address a resolver connects to)
SPELLINGS = [
    ("0177.0.0.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
    ("0X7F.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("127.0.1", "127.0.0.1"),
    ("0", "0.0.0.0"), ("012.0.0.1", "10.0.0.1"), ("0251.0376.0251.0376", "169.254.169.254"),
    ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"), ("2852039166", "169.254.169.254"),
    ("127.0.0.1.", "127.0.0.1"), ("LOCALHOST", "127.0.0.1"), ("api.localhost", "127.0.0.1"),
    ("[::1]", "::1"), ("8.8.8.8", "8.8.8.8"),
]
# IPv6 forms that carry a refused IPv4 address; metadata stays refused even when allowed
CARRIERS = [
    ("::ffff:169.254.169.254", True), ("2002:a9fe:a9fe::", True), ("64:ff9b::a9fe:a9fe", True),
    ("64:ff9b:1::a9fe:a9fe", True), ("::a9fe:a9fe", True), ("::ffff:0:a9fe:a9fe", True),
    ("2001:0:4136:e378:8000:63bf:5601:5601", True),  # Teredo, client 169.254.169.254 obfuscated
    ("2002:7f00:1::", False), ("64:ff9b::7f00:1", False), ("fd00:ec2::254", True),
]


@pytest.mark.parametrize("host,address", SPELLINGS)
def test_hosts_are_read_as_a_resolver_reads_them(host: str, address: str) -> None:
    assert str(parse_host(host)) == address


@pytest.mark.parametrize("host", ["example.com", "images.example.com", "a1.example", "xn--d1a"])
def test_names_are_left_to_dns(host: str) -> None:
    assert parse_host(host) is None and refused_literal(host, STRICT) is None


@pytest.mark.parametrize("host", ["1.2.3.999", "256.1", "0x100000000", "08.1.1.1", "1.2.3.4.5",
                                  "example.123", "0x", "[::g]"])
def test_numbers_that_are_no_address_are_malformed(host: str) -> None:
    with pytest.raises(MalformedHost):
        parse_host(host)


@pytest.mark.parametrize("host,address", [s for s in SPELLINGS if s[1] != "8.8.8.8"])
def test_every_private_spelling_is_refused_at_create(host: str, address: str) -> None:
    refused = refused_literal(host, STRICT)
    assert refused is not None and refused.startswith(address)
    with pytest.raises(InvalidImage, match="SEGUE_ALLOW_PRIVATE_URLS") as caught:
        check_image_reference(f"http://{host}:8080/a.png", "first_frame", STRICT)
    assert caught.value.code == "InvalidImageURL.Forbidden"


@pytest.mark.parametrize("host,metadata", CARRIERS)
def test_ipv6_carrying_a_refused_ipv4_address_is_refused(host: str, metadata: bool) -> None:
    assert refused_literal(host, STRICT) is not None
    assert (refused_literal(host, ALLOWED) is not None) is metadata


def test_a_public_address_in_any_spelling_is_allowed() -> None:
    for host in ("8.8.8.8", "134744072", "0x8080808", "2002:808:808::", "::ffff:8.8.8.8"):
        assert refused_literal(host, STRICT) is None, host


def test_malformed_numeric_hosts_are_refused_at_create() -> None:
    with pytest.raises(InvalidImage, match="1.2.3.999") as caught:
        check_image_reference("http://1.2.3.999/a.png", "first_frame", ALLOWED)
    assert caught.value.code == "InvalidImageURL.InvalidFormat"


def test_numeric_hosts_are_sent_in_the_standard_spelling() -> None:
    assert canonical_url("http://0177.0.0.1:9/x?y=1") == "http://127.0.0.1:9/x?y=1"
    assert canonical_url("http://u:p@0x7f000001/a") == "http://u:p@127.0.0.1/a"
    for url in ("http://localhost:9/", "http://[::1]:9/", "https://example.com/a"):
        assert canonical_url(url) == url


# Spellings that passed at create before (each was refused only when the fetch resolved it)
UNICODE_SPELLINGS = [
    ("127。0。0。1", "127.0.0.1"),  # ideographic full stops
    ("１２７.０.０.１", "127.0.0.1"),  # fullwidth digits
    ("１２７．０．０．１", "127.0.0.1"),  # fullwidth digits and full stops
    ("169｡254｡169｡254", "169.254.169.254"),  # halfwidth ideographic full stops
    ("ＬＯＣＡＬＨＯＳＴ", "127.0.0.1"),
    ("①②⑦.0.0.1", "127.0.0.1"),  # circled digits, which UTS #46 maps to digits
]


@pytest.mark.parametrize("host,address", UNICODE_SPELLINGS)
def test_hosts_are_normalised_as_idna_before_deciding(host: str, address: str) -> None:
    assert str(parse_host(host)) == address
    with pytest.raises(InvalidImage, match="SEGUE_ALLOW_PRIVATE_URLS") as caught:
        check_image_reference(f"http://{host}/a.png", "first_frame", STRICT)
    assert caught.value.code == "InvalidImageURL.Forbidden"


def test_unicode_names_are_still_names() -> None:
    assert parse_host("例え.テスト") is None and refused_literal("bücher.example", STRICT) is None


@pytest.mark.parametrize("host", ["fec0::1", "[fec0::1]", "feff:ffff::1"])
def test_site_local_ipv6_is_refused_at_create(host: str) -> None:
    assert refused_literal(host, STRICT) is not None
    with pytest.raises(InvalidImage, match="SEGUE_ALLOW_PRIVATE_URLS"):
        check_image_reference(f"http://[{host.strip('[]')}]/a.png", "first_frame", STRICT)


@pytest.mark.parametrize("host,refused", [
    ("64:ff9b::808:808", False), ("64:ff9b::8.8.8.8", False), ("64:ff9b::101:101", False),
    ("64:ff9b::a00:1", True), ("64:ff9b::7f00:1", True), ("64:ff9b::", True),
])
def test_nat64_is_decided_by_the_ipv4_address_it_carries(host: str, refused: bool) -> None:
    assert (refused_literal(host, STRICT) is not None) is refused
