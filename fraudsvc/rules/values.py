"""List entry values per kind: validated and put in one canonical form, so that a look-up is a
plain set or dict probe. The API uses `normalise` to refuse a bad value with a message; the
look-up side uses `probe_key` to put a transaction's value in the same form."""

from __future__ import annotations

import ipaddress
import re
import socket

from fraudsvc.rules.countries import COUNTRY_CODES
from fraudsvc.rules.schema import LIST_KINDS, ListKind

# the contract's id charset (fraudsvc.contract.ID_PATTERN), kept here so the rules core stays free
# of the contract module's polars import
ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")
MCC_PATTERN = re.compile(r"[0-9]{4}\Z")
MAX_STRING = 256


class ListValueError(ValueError):
    """A list entry refused: the message says which value and why."""


def normalise(kind: ListKind, value: str) -> str:
    """The canonical form of an entry of a list of this kind, or ListValueError."""
    if kind not in LIST_KINDS:
        raise ListValueError(f"unknown list kind {kind!r}; the kinds are {', '.join(LIST_KINDS)}")
    if not isinstance(value, str):
        raise ListValueError(f"a list value is a string, not {type(value).__name__}")
    text = value.strip()
    if kind in ("customer", "terminal", "device"):
        if not ID_PATTERN.match(text):
            raise ListValueError(
                f"{kind} id {value!r} must be 1-64 characters of A-Z a-z 0-9 . _ : -"
            )
        return text
    if kind == "country":
        code = text.upper()
        if code not in COUNTRY_CODES:
            raise ListValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
        return code
    if kind == "merchant_category":
        if not MCC_PATTERN.match(text):
            raise ListValueError(f"merchant category {value!r} must be a 4-digit code")
        return text
    if kind == "ip":
        return ip_entry(value)[0]
    if not text or len(text) > MAX_STRING:
        raise ListValueError(f"a string entry has 1-{MAX_STRING} characters, not {len(text)}")
    return text


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def ip_entry(value: str) -> tuple[str, int, int, int]:
    """An address or CIDR network as (canonical text, version, prefix length, network as an
    integer). Host bits set in a network are refused, not masked; IPv4-mapped IPv6 addresses
    and networks (inside ::ffff:0:0/96) are their IPv4 equivalents, as transactions' are."""
    text = value.strip()
    try:  # the common entry, a plain IPv4 address: 0.4 µs here instead of 18 through ipaddress
        packed = socket.inet_pton(socket.AF_INET, text)
        return socket.inet_ntop(socket.AF_INET, packed), 4, 32, int.from_bytes(packed, "big")
    except (OSError, ValueError):
        pass
    if "%" in text:
        raise ListValueError(f"{value!r}: scoped IPv6 addresses (with %zone) are not supported")
    try:
        network: Network = ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        raise ListValueError(f"{value!r} is not an IP address or CIDR network: {error}") from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    length = network.prefixlen
    canonical = str(network.network_address if length == network.max_prefixlen else network)
    return canonical, network.version, length, int(network.network_address)


def parse_ip(value: str) -> tuple[int, int] | None:
    """A transaction's IP as (version, integer), or None when it is not an address. inet_pton is
    ten times faster than ipaddress here (0.27 against 2.9 µs) and as strict (no leading zeros,
    no short forms)."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, value), "big")
    except (OSError, TypeError, ValueError):
        pass
    try:
        number = int.from_bytes(socket.inet_pton(socket.AF_INET6, value), "big")
    except (OSError, TypeError, ValueError):
        return None
    if number >> 32 == 0xFFFF:  # ::ffff:a.b.c.d is the IPv4 address a.b.c.d
        return 4, number & 0xFFFFFFFF
    return 6, number
