"""Synthetic card payments in the Handbook's style, made to look like real traffic; seeded.

Customers live on a map and buy at shops near home, online, by mail or telephone order, and pay
subscriptions; merchants' sizes are heavy-tailed; payments carry the attributes of contract v2
(currency, merchant category and country, card country, channel, device, IP, extras). Six fraud
scenarios are recorded in the extra column `fraud_scenario` (see `config.SCENARIOS`).

- `config`: the parameters and the scenario codes;
- `catalog`: merchant kinds, categories, countries, currencies, channels;
- `world`: terminals, customers and subscriptions drawn from the seed;
- `payments`: genuine payments of a chunk of days;
- `fraud`: the fraud scenarios, scheduled up front;
- `attributes` and `identity`: the contract v2 columns, device ids and IP addresses;
- `chunks`: generation chunk by chunk and the output file.
"""

from fraudsvc.datagen.chunks import ROWS_PER_CHUNK, GenerateResult, generate
from fraudsvc.datagen.config import (
    CARD_TESTING,
    CNP_ABROAD,
    COMPROMISED_CARD,
    COMPROMISED_TERMINAL,
    GENUINE,
    LARGE_AMOUNT,
    RISKY_CATEGORIES,
    SCENARIOS,
    GeneratorConfig,
)

__all__ = [
    "CARD_TESTING",
    "CNP_ABROAD",
    "COMPROMISED_CARD",
    "COMPROMISED_TERMINAL",
    "GENUINE",
    "LARGE_AMOUNT",
    "RISKY_CATEGORIES",
    "ROWS_PER_CHUNK",
    "SCENARIOS",
    "GenerateResult",
    "GeneratorConfig",
    "generate",
]
