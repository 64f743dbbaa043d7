"""Static tables of the simulated payment market: merchant kinds, categories, countries, channels.

The market is one issuing country (France: most cards and every shop on the map are French, the
reporting currency is the euro) with foreign online shops, a few foreign cards, and fraudsters
abroad. Merchant category codes (MCC) are real ISO 18245 codes, weighted by how common such
merchants are; they are fixed per terminal, as are the merchant's country and currency.
"""

from __future__ import annotations

import numpy as np

HOME_COUNTRY = "FR"

# what kind of point of sale a terminal is; the kind decides the payment channel
PHYSICAL, ONLINE, MOTO, SUBSCRIPTION = range(4)
# share of terminals of each non-physical kind (the rest are shops on the map)
KIND_SHARES = {ONLINE: 0.05, MOTO: 0.005, SUBSCRIPTION: 0.01}

CHANNELS = ("card_present", "contactless", "ecommerce", "moto", "recurring")
CARD_PRESENT, CONTACTLESS, ECOMMERCE, MAIL_PHONE, RECURRING = range(5)
CONTACTLESS_LIMIT = 50.0  # EUR per payment without a mobile wallet (the French limit)

# (MCC, relative number of merchants, relative visits to one of them) per kind of terminal:
# a supermarket sees a customer weekly, a jeweller or an electronics shop rarely
MCCS: dict[int, tuple[tuple[str, float, float], ...]] = {
    PHYSICAL: (
        ("5411", 14, 3.0),  # grocery stores, supermarkets
        ("5812", 14, 1.0),  # restaurants
        ("5814", 9, 1.5),  # fast food
        ("5999", 7, 0.5),  # miscellaneous retail
        ("5541", 5, 1.0),  # service stations (fuel)
        ("5912", 5, 1.0),  # pharmacies
        ("5462", 5, 2.0),  # bakeries
        ("5499", 5, 1.0),  # miscellaneous food stores
        ("5813", 5, 1.0),  # bars
        ("5651", 5, 0.3),  # clothing
        ("7230", 4, 0.3),  # hairdressers, beauty
        ("5732", 3, 0.1),  # electronics
        ("4121", 3, 0.5),  # taxis
        ("5993", 2, 1.5),  # tobacconists
        ("5311", 2, 0.5),  # department stores
        ("5942", 2, 0.3),  # book stores
        ("4111", 2, 1.0),  # local transport
        ("5200", 2, 0.3),  # home supply, DIY
        ("7832", 1, 0.3),  # cinemas
        ("7011", 1, 0.1),  # hotels
        ("0742", 1, 0.1),  # veterinary services
        ("5944", 1, 0.05),  # jewellery
        ("4829", 1, 0.1),  # money transfer agents
        ("7995", 1, 0.3),  # betting shops
        ("6540", 1, 0.1),  # prepaid card and voucher sales
    ),
    ONLINE: (
        ("5999", 10, 1.5),  # marketplaces, miscellaneous retail
        ("5732", 6, 0.15),  # electronics
        ("5691", 6, 0.5),  # clothing
        ("5815", 5, 1.0),  # digital media
        ("4722", 5, 0.2),  # travel agencies
        ("5311", 4, 0.5),  # department stores
        ("5816", 4, 0.2),  # digital games
        ("5817", 4, 0.5),  # software, apps
        ("7011", 4, 0.2),  # hotels
        ("5814", 4, 1.0),  # food delivery
        ("4511", 3, 0.1),  # airlines
        ("4121", 3, 1.0),  # ride hailing
        ("5411", 3, 1.0),  # grocery delivery
        ("5942", 3, 0.5),  # books
        ("7995", 3, 0.3),  # online betting
        ("4829", 2, 0.1),  # money transfer
        ("6540", 2, 0.1),  # gift and prepaid cards
        ("5945", 2, 0.3),  # toys, hobbies
        ("5967", 1, 0.2),  # direct marketing, inbound teleservices
    ),
    MOTO: (
        ("4722", 4, 1.0),  # travel agencies
        ("5964", 3, 1.0),  # catalogue merchants
        ("5969", 3, 1.0),  # other direct marketers
        ("7011", 2, 1.0),  # hotel bookings by phone
        ("5967", 1, 1.0),  # inbound teleservices
    ),
    SUBSCRIPTION: (
        ("4899", 4, 1.0),  # pay TV, video streaming
        ("4814", 3, 1.0),  # telephone, mobile plans
        ("5815", 3, 1.0),  # music streaming, digital media
        ("5968", 2, 1.0),  # subscription boxes, press
        ("7997", 2, 1.0),  # gyms, clubs
        ("4900", 2, 1.0),  # electricity, gas, water
    ),
}
# monthly price range (EUR) of a subscription, by MCC
SUBSCRIPTION_PRICES = {
    "4899": (7.99, 24.99),
    "4814": (9.99, 59.99),
    "5815": (4.99, 17.99),
    "5968": (9.99, 39.99),
    "7997": (19.99, 49.99),
    "4900": (35.0, 160.0),
}
# bills that follow usage vary a little from month to month; the others are a fixed price
VARIABLE_BILLS = frozenset({"4814", "4900"})
# where compromised cards are cashed out: goods and value that resell easily
HIGH_RISK_MCCS = frozenset({"5732", "4829", "7995", "6540", "5944", "5816"})

# share of each kind's merchants based abroad, and where (relative weights)
FOREIGN_MERCHANT_SHARE = {PHYSICAL: 0.0, ONLINE: 0.3, MOTO: 0.1, SUBSCRIPTION: 0.25}
HOME_BIAS = 0.4  # customers buy less from a foreign shop than from a domestic one of its rank
FOREIGN_MERCHANT_COUNTRIES = {
    "IE": 5, "LU": 4, "US": 5, "NL": 4, "DE": 4, "GB": 4, "CN": 3,
    "ES": 2, "IT": 2, "BE": 2, "SE": 1, "CH": 1,
}  # fmt: skip
# cards issued abroad held by people living here (cross-border workers, expats)
FOREIGN_CARD_SHARE = 0.03
FOREIGN_CARD_COUNTRIES = {
    "BE": 4, "DE": 4, "ES": 3, "IT": 3, "GB": 3, "CH": 3, "PT": 2, "NL": 2, "US": 1, "MA": 1,
}  # fmt: skip
# where fraudsters' connections come from (CNP fraud abroad)
FRAUD_IP_COUNTRIES = {
    "US": 3, "NL": 2, "GB": 2, "RO": 2, "NG": 2, "BR": 2, "VN": 2, "RU": 2, "UA": 1, "IN": 1,
    "ID": 1, "CN": 1,
}  # fmt: skip
# where customers' occasional connections from elsewhere come from (travel, roaming)
TRAVEL_IP_COUNTRIES = {"ES": 3, "IT": 3, "DE": 2, "GB": 2, "BE": 2, "PT": 2, "US": 1, "MA": 1}

CURRENCY_OF = {
    "FR": "EUR", "IE": "EUR", "LU": "EUR", "NL": "EUR", "DE": "EUR", "ES": "EUR", "IT": "EUR",
    "BE": "EUR", "PT": "EUR", "GB": "GBP", "US": "USD", "CN": "CNY", "SE": "SEK", "CH": "CHF",
    "MA": "MAD", "RO": "RON", "NG": "NGN", "BR": "BRL", "VN": "VND", "RU": "RUB", "UA": "UAH",
    "IN": "INR", "ID": "IDR",
}  # fmt: skip
# payment authentication (3-D Secure) is the rule in the EEA, the exception elsewhere
EEA = frozenset({"FR", "IE", "LU", "NL", "DE", "ES", "IT", "BE", "PT", "SE"})

COUNTRIES = tuple(
    sorted(
        {HOME_COUNTRY}
        | set(FOREIGN_MERCHANT_COUNTRIES)
        | set(FOREIGN_CARD_COUNTRIES)
        | set(FRAUD_IP_COUNTRIES)
        | set(TRAVEL_IP_COUNTRIES)
    )
)
COUNTRY_INDEX = {code: i for i, code in enumerate(COUNTRIES)}
HOME = COUNTRY_INDEX[HOME_COUNTRY]

MCC_CODES = tuple(sorted({code for table in MCCS.values() for code, _, _ in table}))
MCC_INDEX = {code: i for i, code in enumerate(MCC_CODES)}
IS_HIGH_RISK_MCC = np.array([code in HIGH_RISK_MCCS for code in MCC_CODES])


def weighted_codes(table: dict[str, int]) -> tuple[list[str], np.ndarray]:
    """Codes and their probabilities from a {code: weight} table."""
    weights = np.array(list(table.values()), dtype=np.float64)
    return list(table), weights / weights.sum()


def draw_mccs(rng: np.random.Generator, kind: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Merchant categories (indexes into MCC_CODES) of `size` terminals of a kind, and the
    relative visits each of them gets for its category."""
    table = MCCS[kind]
    merchants = np.array([m for _, m, _ in table], dtype=np.float64)
    drawn = rng.choice(len(table), size=size, p=merchants / merchants.sum())
    index = np.array([MCC_INDEX[code] for code, _, _ in table])
    visits = np.array([v for _, _, v in table])
    return index[drawn], visits[drawn]


def draw_countries(rng: np.random.Generator, table: dict[str, int], size: int) -> np.ndarray:
    """Country indexes (into COUNTRIES) drawn from a weighted table."""
    codes, p = weighted_codes(table)
    index = np.array([COUNTRY_INDEX[c] for c in codes], dtype=np.int64)
    return index[rng.choice(len(codes), size=size, p=p)]
