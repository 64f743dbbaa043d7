"""Lists in memory: validated, canonical values per kind; membership by set look-up, including
IPv4 and IPv6 addresses and CIDR networks; expiry; immutable snapshots swapped atomically."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudsvc.rules.lists import (
    ListEntry,
    ListSnapshot,
    ListValueError,
    LiveLists,
    NamedList,
    build_lists,
    normalise,
)
from fraudsvc.rules.schema import ListKind

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def named(kind: ListKind, *values: str, expires_at: datetime | None = None) -> NamedList:
    return NamedList("l", kind, [ListEntry(v, "why", "test", "me", expires_at) for v in values])


@pytest.mark.parametrize(
    ("kind", "entry", "canonical", "members", "strangers"),
    [
        ("customer", " C0001 ", "C0001", ["C0001"], ["c0001", "C0001 ", "C000"]),
        ("terminal", "T:1.2_3-x", "T:1.2_3-x", ["T:1.2_3-x"], ["T:1.2_3-X"]),
        ("device", "dev-42", "dev-42", ["dev-42"], ["dev-4"]),
        ("country", "fr", "FR", ["FR", "fr", "Fr"], ["FRA", "DE", ""]),
        ("merchant_category", "5967", "5967", ["5967"], ["05967", "596"]),
        ("string", "Mailinator.com", "Mailinator.com", ["Mailinator.com"], ["mailinator.com"]),
        ("ip", "192.0.2.7", "192.0.2.7", ["192.0.2.7", "::ffff:192.0.2.7"], ["192.0.2.8"]),
        ("ip", "2001:DB8:0::1", "2001:db8::1", ["2001:db8::1", "2001:0db8::0001"], ["2001:db8::2"]),
        ("ip", "::ffff:192.0.2.9", "192.0.2.9", ["192.0.2.9"], ["192.0.2.8"]),
        ("ip", "192.0.2.0/32", "192.0.2.0", ["192.0.2.0"], ["192.0.2.1"]),
        ("ip", "::ffff:10.0.0.0/104", "10.0.0.0/8", ["10.9.9.9"], ["11.0.0.0"]),
        ("ip", "2001:db8::/128", "2001:db8::", ["2001:db8::"], ["2001:db8::1"]),
    ],
)
def test_each_kind_is_canonical_and_matches_its_members_only(
    kind: ListKind, entry: str, canonical: str, members: list[str], strangers: list[str]
) -> None:
    assert normalise(kind, entry) == canonical
    lst = named(kind, entry)
    assert list(lst.entries) == [canonical]
    for value in members:
        assert lst.find(value, NOW) is not None, value
    for value in strangers:
        assert lst.find(value, NOW) is None, value


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("customer", "", "must be 1-64 characters"),
        ("customer", "C 1", "must be 1-64 characters"),
        ("terminal", "x" * 65, "must be 1-64 characters"),
        ("device", "dév", "must be 1-64 characters"),
        ("country", "XX", "not an ISO 3166-1 alpha-2 country code"),
        ("country", "FRA", "not an ISO 3166-1 alpha-2"),
        ("merchant_category", "59671", "must be a 4-digit code"),
        ("merchant_category", "abcd", "must be a 4-digit code"),
        ("ip", "10.0.0.1/8", "has host bits set"),
        ("ip", "10.0.0.0/33", "not an IP address or CIDR network"),
        ("ip", "256.1.1.1", "not an IP address or CIDR network"),
        ("ip", "fe80::1%eth0", "scoped IPv6 addresses"),
        ("ip", "example.com", "not an IP address"),
        ("string", "  ", "1-256 characters"),
        ("string", "x" * 257, "1-256 characters"),
        ("nope", "x", "unknown list kind"),
    ],
)
def test_bad_values_are_refused_with_a_message(kind: ListKind, value: str, message: str) -> None:
    with pytest.raises(ListValueError, match=message):
        normalise(kind, value)
    with pytest.raises(ListValueError):
        named(kind, value)


@pytest.mark.parametrize(
    ("network", "inside", "outside"),
    [
        ("10.0.0.0/8", ["10.0.0.0", "10.255.255.255", "10.1.2.3"], ["11.0.0.0", "9.255.255.255"]),
        ("192.0.2.128/25", ["192.0.2.128", "192.0.2.255"], ["192.0.2.127", "192.0.3.0"]),
        ("0.0.0.0/0", ["1.2.3.4", "255.255.255.255"], ["::1", "2001:db8::1"]),
        ("2001:db8::/32", ["2001:db8::", "2001:db8:ffff::1"], ["2001:db9::", "10.0.0.1"]),
        ("2001:db8:1:2::/64", ["2001:db8:1:2:ffff::"], ["2001:db8:1:3::"]),
        ("::/0", ["::1", "2001:db8::1"], ["10.0.0.1"]),
        # IPv4-mapped addresses are IPv4 addresses, in probes and entries
        ("::ffff:10.0.0.0/104", ["10.1.2.3", "::ffff:10.1.2.3"], ["11.0.0.0", "::a00:1"]),
    ],
)
def test_cidr_networks_match_every_address_inside_and_none_outside(
    network: str, inside: list[str], outside: list[str]
) -> None:
    lst = named("ip", network)
    for address in inside:
        assert lst.find(address, NOW) is not None, address
    for address in outside:
        assert lst.find(address, NOW) is None, address


def test_an_ip_list_mixes_addresses_and_networks_and_answers_the_most_specific() -> None:
    lst = NamedList(
        "nets",
        "ip",
        [
            ListEntry("10.0.0.0/8", "private"),
            ListEntry("10.1.0.0/16", "office"),
            ListEntry("10.1.2.3", "one host"),
            ListEntry("2001:db8::/32", "docs"),
        ],
    )
    assert lst.find("10.1.2.3", NOW) == ListEntry("10.1.2.3", "one host")
    assert lst.find("10.1.2.4", NOW) == ListEntry("10.1.0.0/16", "office")
    assert lst.find("10.2.0.0", NOW) == ListEntry("10.0.0.0/8", "private")
    assert lst.find("2001:db8::5", NOW) == ListEntry("2001:db8::/32", "docs")
    for junk in ("", "10.1.2", "010.1.2.3", "10.1.2.3/32", "x", "10.1.2.3\x00"):
        assert lst.find(junk, NOW) is None


def test_an_expired_entry_never_matches_and_does_not_hide_a_live_network() -> None:
    lst = NamedList(
        "nets",
        "ip",
        [
            ListEntry("10.0.0.0/8", "long"),
            ListEntry("10.1.2.3", "short", expires_at=NOW),
            ListEntry("192.0.2.1", "short", expires_at=NOW + timedelta(seconds=1)),
        ],
    )
    assert lst.find("10.1.2.3", NOW - timedelta(seconds=1)) == ListEntry(
        "10.1.2.3", "short", expires_at=NOW
    )
    assert lst.find("10.1.2.3", NOW) == ListEntry("10.0.0.0/8", "long")  # expiry is exclusive
    assert lst.find("192.0.2.1", NOW) is not None
    assert lst.find("192.0.2.1", NOW + timedelta(seconds=1)) is None


def test_expiry_applies_to_every_kind() -> None:
    lst = named("country", "NG", expires_at=NOW)
    assert lst.find("NG", NOW - timedelta(microseconds=1)) is not None
    assert lst.find("NG", NOW) is None


def test_a_value_listed_twice_keeps_the_entry_that_lasts_longest() -> None:
    soon, later = NOW + timedelta(days=1), NOW + timedelta(days=9)
    lst = NamedList(
        "c",
        "customer",
        [ListEntry("C1", "a", expires_at=soon), ListEntry("C1", "b", expires_at=later)],
    )
    assert lst.find("C1", soon) == ListEntry("C1", "b", expires_at=later)
    forever = NamedList(
        "c", "customer", [ListEntry("C1", "a"), ListEntry("C1", "b", expires_at=later)]
    )
    assert forever.find("C1", later) == ListEntry("C1", "a")
    assert len(forever) == 1


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 5, 1)
    with pytest.raises(ListValueError, match="timezone-aware"):
        named("customer", "C1", expires_at=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        build_lists({}, []).at(naive)


def test_a_snapshot_is_built_from_rows_and_leaves_bad_rows_out_with_the_reason() -> None:
    snapshot = build_lists(
        {"customers": "customer", "countries": "country", "empty": "string"},
        [
            ("customers", ListEntry("C1", "fraud")),
            ("countries", ListEntry("ng", "policy")),
            ("countries", ListEntry("XX", "typo")),
            ("gone", ListEntry("C2", "orphan")),
            ("customers", ListEntry("C3", "naive", expires_at=datetime(2026, 1, 1))),
        ],
        version=7,
    )
    assert snapshot.kinds == {"customers": "customer", "countries": "country", "empty": "string"}
    assert snapshot.version == 7
    view = snapshot.at(NOW)
    assert view.contains("customers", "C1")
    assert view.contains("countries", "NG")
    assert not view.contains("customers", "C3")
    assert not view.contains("empty", "x")
    assert len(snapshot.rejected) == 3
    assert "@countries: 'XX' is not an ISO 3166-1 alpha-2 country code" in snapshot.rejected
    assert "@gone: no such list (entry 'C2')" in snapshot.rejected
    with pytest.raises(LookupError, match="unknown list @gone"):
        view.contains("gone", "C2")


def test_list_names_are_checked() -> None:
    for bad in ("Blocked", "_x", "a-b", ""):
        with pytest.raises(ListValueError, match="list name"):
            NamedList(bad, "string", [])


def test_snapshots_are_immutable_and_swapped_whole() -> None:
    first = build_lists({"c": "customer"}, [("c", ListEntry("C1"))], version=1)
    live = LiveLists(first)
    reader = live.current.at(NOW)  # a transaction in flight keeps the snapshot it started with
    second = first.replacing(NamedList("c", "customer", [ListEntry("C2")]), version=2)
    live.replace(second)
    assert live.current is second
    assert live.current.version == 2
    assert reader.contains("c", "C1")
    assert not reader.contains("c", "C2")
    assert live.current.at(NOW).contains("c", "C2")
    assert not live.current.at(NOW).contains("c", "C1")
    assert first.at(NOW).contains("c", "C1")  # the old snapshot did not change
    with pytest.raises(TypeError):
        first.lists["c"] = NamedList("c", "customer", [])  # type: ignore[index]
    with pytest.raises(TypeError):
        first.lists["c"].entries["C9"] = ListEntry("C9")  # type: ignore[index]


def test_an_empty_holder_has_no_lists() -> None:
    assert LiveLists().current == ListSnapshot({})
    assert LiveLists().current.kinds == {}


def test_membership_costs_the_same_whatever_the_list_size() -> None:
    """Constant time: the look-up is a dict probe per prefix length present, so a list of
    thousands of addresses and networks answers with the same number of probes as a list of 3."""
    big = NamedList(
        "big",
        "ip",
        [ListEntry(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}") for i in range(5_000)]
        + [ListEntry("172.16.0.0/12"), ListEntry("2001:db8::/32")],
    )
    assert [length for length, _, _ in big._v4] == [32, 12]
    assert [length for length, _, _ in big._v6] == [32]
    assert big.find("10.0.19.135", NOW) is not None
    assert big.find("10.0.19.136", NOW) is None
    assert big.find("172.31.255.255", NOW) is not None


def _address(version: int, number: int) -> str:
    return str(ipaddress.IPv4Address(number) if version == 4 else ipaddress.IPv6Address(number))


networks_and_probes = st.sampled_from([4, 6]).flatmap(
    lambda version: st.tuples(
        st.just(version),
        st.lists(
            st.tuples(
                st.integers(0, 2 ** (32 if version == 4 else 128) - 1),
                st.integers(0, 32 if version == 4 else 128),
            ),
            min_size=1,
            max_size=12,
        ),
        st.lists(st.integers(0, 2 ** (32 if version == 4 else 128) - 1), min_size=1, max_size=12),
    )
)


@settings(max_examples=300, deadline=None)
@given(networks_and_probes)
def test_ip_membership_equals_a_scan_of_every_network(
    drawn: tuple[int, list[tuple[int, int]], list[int]],
) -> None:
    """The prefix-length tables answer exactly what checking the address against each network
    with the standard library would (the slow, obvious oracle)."""
    version, raw_networks, raw_probes = drawn
    bits = 32 if version == 4 else 128
    networks = [
        ipaddress.ip_network(
            (_address(version, number >> (bits - length) << (bits - length)), length)
        )
        for number, length in raw_networks
    ]
    lst = NamedList("nets", "ip", [ListEntry(str(n)) for n in networks])
    # probes inside the networks (their first and last addresses) and anywhere
    probes = [int(n.network_address) for n in networks] + [
        int(n.broadcast_address) for n in networks
    ]
    for number in [*probes, *raw_probes]:
        address = ipaddress.ip_address(_address(version, number))
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            continue  # a mapped probe is an IPv4 address: the scan below would not know that
        expected = any(address in n for n in networks)
        assert (lst.find(_address(version, number), NOW) is not None) is expected, (
            address,
            networks,
        )
