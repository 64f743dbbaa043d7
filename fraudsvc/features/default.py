"""The default declaration: what `fraudsvc train` uses unless told otherwise.

The Handbook's baseline (amount, weekend, night; the customer's count and mean amount over 1 h,
1, 7 and 30 days, the time since the customer's previous transaction and the amount against the
customer's 30-day mean; the terminal's count and fraud share over 1, 7 and 30 days ending a
label delay back), and what the payment's attributes add, each for a fraud pattern:

- the channel and the merchant category, as categories: card-not-present fraud and cash-out
  concentrate in a few of them;
- cross-border (card and merchant countries differ): stolen cards are used abroad;
- the customer's transactions with this device, with this IP, and in this merchant category
  over 30 days, this one included: 1 means a device, an IP or a kind of shop new to the card,
  the classic sign of a taken-over card. Counts over a pair of fields are exact in buckets;
  "distinct devices of a card" would need a sketch, so it is not declared.

A transaction without the field (a card-present payment has no device) gets a missing value,
which LightGBM reads as missing.
"""

from __future__ import annotations

from fraudsvc.features.declaration import (
    DAY,
    HOUR,
    Amount,
    Category,
    Declaration,
    Differs,
    Entity,
    Feature,
    Night,
    Ratio,
    Weekend,
    Window,
)

LABEL_DELAY = 7 * DAY
CUSTOMER_WINDOWS = (("1h", HOUR), ("1d", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY))
TERMINAL_WINDOWS = (("1d", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY))


def baseline_features(
    customer_windows: tuple[tuple[str, int], ...] = CUSTOMER_WINDOWS,
    terminal_windows: tuple[tuple[str, int], ...] = TERMINAL_WINDOWS,
    label_delay: int = LABEL_DELAY,
    night_end_hour: int = 6,
) -> list[Feature]:
    """The Handbook's features, in the order models trained before declarations used."""
    features: list[Feature] = [
        Amount("amount"),
        Weekend("is_weekend"),
        Night("is_night", end_hour=night_end_hour),
    ]
    for label, seconds in customer_windows:
        features += [
            Window(f"customer_nb_tx_{label}", "customer", "count", seconds),
            Window(f"customer_mean_amount_{label}", "customer", "amount_mean", seconds),
        ]
    longest_label, longest = max(customer_windows, key=lambda w: w[1])
    features += [
        Window("customer_seconds_since_prev", "customer", "seconds_since_prev", longest),
        Ratio(
            f"amount_over_customer_mean_{longest_label}",
            "amount",
            f"customer_mean_amount_{longest_label}",
            when_zero=1.0,
        ),
    ]
    for label, seconds in terminal_windows:
        features += [
            Window(f"terminal_nb_tx_{label}", "terminal", "count", seconds, delay=label_delay),
            Window(f"terminal_risk_{label}", "terminal", "fraud_share", seconds, delay=label_delay),
        ]
    return features


BASE_ENTITIES = (Entity("customer", ("customer_id",)), Entity("terminal", ("terminal_id",)))

BASELINE = Declaration(
    version=2,
    entities=BASE_ENTITIES,
    features=tuple(baseline_features()),
    label_delay=LABEL_DELAY,
)

ATTRIBUTE_ENTITIES = (
    Entity("customer_device", ("customer_id", "device_id")),
    Entity("customer_ip", ("customer_id", "ip")),
    Entity("customer_mcc", ("customer_id", "merchant_category")),
)
ATTRIBUTE_FEATURES: tuple[Feature, ...] = (
    Category("channel_code", field="channel"),
    Category("merchant_category_code", field="merchant_category"),
    Differs("cross_border", left="card_country", right="merchant_country"),
    Window("customer_device_nb_tx_30d", "customer_device", "count", 30 * DAY),
    Window("customer_ip_nb_tx_30d", "customer_ip", "count", 30 * DAY),
    Window("customer_mcc_nb_tx_30d", "customer_mcc", "count", 30 * DAY),
)

DECLARATION = Declaration(
    version=2,
    entities=(*BASE_ENTITIES, *ATTRIBUTE_ENTITIES),
    features=(*baseline_features(), *ATTRIBUTE_FEATURES),
    label_delay=LABEL_DELAY,
)
