"""A transaction as fraudsvc holds it, and the rules of its fields (contract v2).

The API (`fraudsvc.schemas`), the file contract (`fraudsvc.contract`), the features and the
database all use the rules written here once. Amounts travel as decimals (JSON numbers, file
columns) and are held as integer minor units of the install's one reporting currency: sums of
integers are exact in any order, which is what lets the time buckets equal the raw definition bit
for bit.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fraudsvc.iso import COUNTRIES, CURRENCIES

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
ID_RULE = "1-64 characters of A-Z a-z 0-9 . _ : -"
DEVICE_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
DEVICE_RULE = "1-128 characters of A-Z a-z 0-9 . _ : -"
AMOUNT_DECIMALS = 2
AMOUNT_SCALE = 10**AMOUNT_DECIMALS
"""Minor units per unit of the reporting currency."""
MAX_AMOUNT = 1_000_000
MAX_AMOUNT_MINOR = MAX_AMOUNT * AMOUNT_SCALE
AMOUNT_RULE = (
    f"a finite number >= 0 and <= 1,000,000 with at most {AMOUNT_DECIMALS} decimals "
    "(in the install's reporting currency)"
)
CHANNELS = ("card_present", "contactless", "ecommerce", "moto", "recurring")
MCC_PATTERN = r"^[0-9]{4}$"
MAX_ATTRIBUTES = 32
ATTRIBUTE_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
MAX_ATTRIBUTE_TEXT = 256

REQUIRED_FIELDS = ("transaction_id", "timestamp", "customer_id", "terminal_id", "amount")
OPTIONAL_FIELDS = (
    "currency",
    "merchant_category",
    "merchant_country",
    "card_country",
    "channel",
    "device_id",
    "ip",
    "attributes",
)
KEY_FIELDS = (
    "customer_id",
    "terminal_id",
    "currency",
    "merchant_category",
    "merchant_country",
    "card_country",
    "channel",
    "device_id",
    "ip",
)
"""The fields a feature may group by (an entity key) or compare: text values, never amounts."""

RULES = {
    "currency": "an ISO 4217 alphabetic currency code, e.g. EUR",
    "merchant_category": "a merchant category code of 4 digits, e.g. 5411",
    "merchant_country": "an ISO 3166-1 alpha-2 country code, e.g. FR",
    "card_country": "an ISO 3166-1 alpha-2 country code, e.g. FR",
    "channel": "one of " + ", ".join(CHANNELS),
    "device_id": DEVICE_RULE,
    "ip": "an IPv4 or IPv6 address",
    "attributes": (
        f"an object of at most {MAX_ATTRIBUTES} keys matching [a-z][a-z0-9_]{{0,31}} whose "
        f"values are strings (at most {MAX_ATTRIBUTE_TEXT} characters), finite numbers or "
        "booleans"
    ),
}

_MCC = re.compile(MCC_PATTERN)
_DEVICE = re.compile(DEVICE_PATTERN)
_ATTRIBUTE_KEY = re.compile(ATTRIBUTE_KEY_PATTERN)
Attributes = dict[str, str | float | bool]


class FieldProblem(ValueError):
    """A value that breaks its field's rule; names the field."""

    def __init__(self, field_name: str, rule: str) -> None:
        self.field = field_name
        self.rule = rule
        super().__init__(f"field `{field_name}` must be {rule}")


def amount_to_minor(value: Decimal | float | int | str) -> int:
    """Exact minor units of a decimal amount; raises ValueError when the amount breaks the rule.

    A float is taken by its shortest decimal representation (what a CSV or JSON writer printed),
    so 57.9 is 5790 minor units, not 5789.999...
    """
    if isinstance(value, bool):
        raise ValueError(AMOUNT_RULE)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(AMOUNT_RULE)
        value = repr(value)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(AMOUNT_RULE) from exc
    if not number.is_finite() or number < 0 or number > MAX_AMOUNT:
        raise ValueError(AMOUNT_RULE)
    minor = number * AMOUNT_SCALE
    if minor != minor.to_integral_value():
        raise ValueError(AMOUNT_RULE)
    return int(minor)


def minor_to_amount(minor: int) -> float:
    """The amount as a float: one correctly rounded division, the same in every path."""
    return float(minor) / float(AMOUNT_SCALE)


def canonical_ip(value: str) -> str:
    """The address in its canonical text form (lists and idempotency compare that form). An
    IPv6 scope (`fe80::1%eth0`) names an interface of the sender's host: not a payment's IP."""
    if "%" in value:
        raise ValueError("an IPv6 address with a scope")
    return ipaddress.ip_address(value.strip()).compressed


def check_optional(name: str, value: Any) -> Any:
    """The canonical value of an optional field, or FieldProblem. None stays None."""
    if value is None:
        return None
    rule = RULES[name]
    if name == "attributes":
        return check_attributes(value)
    if not isinstance(value, str):
        raise FieldProblem(name, rule)
    ok: bool
    if name == "currency":
        ok = value in CURRENCIES
    elif name == "merchant_category":
        ok = _MCC.match(value) is not None
    elif name in ("merchant_country", "card_country"):
        ok = value in COUNTRIES
    elif name == "channel":
        ok = value in CHANNELS
    elif name == "device_id":
        ok = _DEVICE.match(value) is not None
    else:  # ip
        try:
            return canonical_ip(value)
        except ValueError:
            ok = False
    if not ok:
        raise FieldProblem(name, rule)
    return value


def check_attributes(value: Any) -> Attributes:
    rule = RULES["attributes"]
    if not isinstance(value, dict) or len(value) > MAX_ATTRIBUTES:
        raise FieldProblem("attributes", rule)
    checked: Attributes = {}
    for key, item in value.items():
        if not isinstance(key, str) or _ATTRIBUTE_KEY.match(key) is None:
            raise FieldProblem(f"attributes.{key}", "a key matching [a-z][a-z0-9_]{0,31}")
        if isinstance(item, bool):
            checked[key] = item
        elif isinstance(item, int | float):
            if not math.isfinite(item):
                raise FieldProblem(f"attributes.{key}", "a finite number, a string or a boolean")
            checked[key] = item
        elif isinstance(item, str) and len(item) <= MAX_ATTRIBUTE_TEXT:
            checked[key] = item
        else:
            raise FieldProblem(
                f"attributes.{key}",
                f"a string of at most {MAX_ATTRIBUTE_TEXT} characters, a finite number or a "
                "boolean",
            )
    return checked


@dataclass(frozen=True)
class Transaction:
    """One transaction as stored and as the features see it; what idempotency compares."""

    transaction_id: str
    timestamp: datetime
    customer_id: str
    terminal_id: str
    amount_minor: int
    currency: str | None = None
    merchant_category: str | None = None
    merchant_country: str | None = None
    card_country: str | None = None
    channel: str | None = None
    device_id: str | None = None
    ip: str | None = None
    attributes: Attributes | None = field(default=None, hash=False)

    @property
    def amount(self) -> float:
        return minor_to_amount(self.amount_minor)

    def value(self, name: str) -> Any:
        """A field by name (the features' entity keys and comparisons read them this way)."""
        return getattr(self, name)

    def differing_fields(self, other: Transaction) -> list[str]:
        """The fields whose values differ (the idempotency check: the whole body counts)."""
        names = ("timestamp", "customer_id", "terminal_id", "amount_minor", *OPTIONAL_FIELDS)
        return [
            "amount" if n == "amount_minor" else n
            for n in names
            if getattr(self, n) != getattr(other, n)
        ]
