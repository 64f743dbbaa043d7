"""Device ids and IP addresses derived from 64-bit keys, vectorised.

A key names one identity (a customer's second device, a fraudster's connection, a one-off
device); a fixed integer mix of it gives the same id every time it is met, in whatever chunk,
with no table of past identities. Strings are assembled from small lookup tables, so no Python
code runs per row.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

_U = np.uint64
PLATFORMS = ("ios", "android", "web")
# first octets of IPv4 space allocated for public use (no private, loopback, link-local,
# shared, multicast, documentation or reserved blocks start with them)
PUBLIC_OCTETS = tuple(o for o in range(1, 224) if o not in {10, 100, 127, 169, 172, 192, 198, 203})
# IPv6 first groups: RIPE's space for connections here, other registries' for fraudsters
IPV6_HOME_PREFIXES = (0x2A01, 0x2A02, 0x2A04)
IPV6_ABROAD_PREFIXES = (0x2600, 0x2A03, 0x2400, 0x2804, 0x2C0F)


def mix(x: np.ndarray, salt: int) -> np.ndarray:
    """SplitMix64 of x + salt: a well-spread 64-bit value per key (uint64 arithmetic wraps)."""
    z = x.astype(np.uint64) + _U(salt) + _U(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
    return np.asarray(z ^ (z >> _U(31)))


def _bits(z: np.ndarray, shift: int, width: int) -> np.ndarray:
    return ((z >> _U(shift)) & _U((1 << width) - 1)).astype(np.int64)


@cache
def _table(kind: str) -> pl.Series:
    if kind == "hex4":  # zero-padded, for device ids
        return pl.Series([f"{i:04x}" for i in range(65_536)])
    if kind == "hex":  # IPv6 groups as written in canonical form
        return pl.Series([f"{i:x}" for i in range(65_536)])
    return pl.Series([str(i) for i in range(256)])


def device_ids(keys: np.ndarray, salt: int) -> pl.Series:
    """`platform:16 hex digits`, e.g. `ios:8f3a09c1d2e4b576` (the contract's id charset)."""
    z = mix(keys, salt)
    hex4 = _table("hex4")
    frame = pl.DataFrame(
        {
            "platform": pl.Series(PLATFORMS).gather(_bits(z, 0, 16) % len(PLATFORMS)),
            **{f"g{i}": hex4.gather(_bits(mix(z, i), 0, 16)) for i in range(4)},
        }
    )
    return frame.select(
        pl.concat_str("platform", pl.lit(":"), "g0", "g1", "g2", "g3").alias("device_id")
    ).to_series()


def ip_addresses(keys: np.ndarray, salt: int, home: np.ndarray, ipv6_share: float) -> pl.Series:
    """Public IPv4 or IPv6 addresses, one per key; `home` says which registry's IPv6 space."""
    z = mix(keys, salt)
    octet, hexes = _table("octet"), _table("hex")
    v6 = _bits(z, 0, 16) < int(ipv6_share * 65_536)
    first = np.array(PUBLIC_OCTETS)[_bits(z, 16, 16) % len(PUBLIC_OCTETS)]
    z2 = mix(z, 1)
    home_prefix = np.array(IPV6_HOME_PREFIXES)[_bits(z, 16, 16) % len(IPV6_HOME_PREFIXES)]
    abroad_prefix = np.array(IPV6_ABROAD_PREFIXES)[_bits(z, 16, 16) % len(IPV6_ABROAD_PREFIXES)]
    # groups 1..0xffff: no zero group, so "p:a:b:c::d" is the canonical (RFC 5952) spelling
    group = [_bits(z2, 16 * i, 16) % 0xFFFF + 1 for i in range(4)]
    frame = pl.DataFrame(
        {
            "v6": v6,
            "o0": octet.gather(first),
            "o1": octet.gather(_bits(z, 32, 8)),
            "o2": octet.gather(_bits(z, 40, 8)),
            "o3": octet.gather(_bits(z, 48, 8) % 254 + 1),  # no .0 or .255 host
            "prefix": hexes.gather(np.where(home, home_prefix, abroad_prefix)),
            **{f"h{i}": hexes.gather(g) for i, g in enumerate(group)},
        }
    )
    dot, colon = pl.lit("."), pl.lit(":")
    return frame.select(
        pl.when("v6")
        .then(pl.concat_str("prefix", colon, "h0", colon, "h1", colon, "h2", pl.lit("::"), "h3"))
        .otherwise(pl.concat_str("o0", dot, "o1", dot, "o2", dot, "o3"))
        .alias("ip")
    ).to_series()
