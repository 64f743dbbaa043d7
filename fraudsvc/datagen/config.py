"""The generator's parameters and the fraud scenarios' codes (the `fraud_scenario` column)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

MerchantSizes = Literal["zipf", "uniform"]
Fields = Literal["full", "basic"]

GENUINE = 0
LARGE_AMOUNT = 1
COMPROMISED_TERMINAL = 2
COMPROMISED_CARD = 3
CARD_TESTING = 4
CNP_ABROAD = 5
RISKY_CATEGORIES = 6
SCENARIOS = {
    GENUINE: "genuine",
    LARGE_AMOUNT: "large amount",
    COMPROMISED_TERMINAL: "compromised terminal",
    COMPROMISED_CARD: "compromised card",
    CARD_TESTING: "card testing",
    CNP_ABROAD: "card not present abroad",
    RISKY_CATEGORIES: "high-risk categories",
}

BASIC_COLUMNS = (
    "transaction_id",
    "timestamp",
    "customer_id",
    "terminal_id",
    "amount",
    "is_fraud",
    "fraud_scenario",
)
ATTRIBUTE_COLUMNS = (
    "currency",
    "merchant_category",
    "merchant_country",
    "card_country",
    "channel",
    "device_id",
    "ip",
    "attributes",
)
FULL_COLUMNS = (*BASIC_COLUMNS[:5], *ATTRIBUTE_COLUMNS, *BASIC_COLUMNS[5:])


@dataclass(frozen=True)
class GeneratorConfig:
    """One simulated world and period; the same values give the same file."""

    customers: int = 2_000
    terminals: int = 4_000
    days: int = 120
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    seed: int = 7
    radius: float = 5.0
    # "zipf": merchant popularity falls as 1/rank (a few merchants carry a large share of all
    # payments, as in real traffic); "uniform": all merchants equally popular (the Handbook's)
    merchant_sizes: MerchantSizes = "zipf"
    # "full": the payment attributes too (contract v2); "basic": the five contract fields only
    fields: Fields = "full"
    # expected scenario events per day, per 1,000 customers (per 1,000 terminals for terminals)
    large_amount_rate: float = 0.35
    compromised_terminal_rate: float = 0.12
    compromised_card_rate: float = 0.55
    card_testing_rate: float = 0.3
    cnp_abroad_rate: float = 0.5
    risky_categories_rate: float = 0.35

    def __post_init__(self) -> None:
        if self.merchant_sizes not in get_args(MerchantSizes):
            raise ValueError(f"merchant_sizes must be one of {get_args(MerchantSizes)}")
        if self.fields not in get_args(Fields):
            raise ValueError(f"fields must be one of {get_args(Fields)}")
        if min(self.customers, self.terminals, self.days) < 1:
            raise ValueError("customers, terminals and days must be at least 1")
