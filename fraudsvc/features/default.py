"""The default declaration: what `fraudsvc train` uses unless told otherwise.

The Handbook's baseline (amount, weekend, night; the customer's count and mean amount over 1 h,
1, 7 and 30 days, the time since the customer's previous transaction and the amount against the
customer's 30-day mean; the terminal's count and fraud share over 1, 7 and 30 days ending a
label delay back).
"""

from __future__ import annotations

from fraudsvc.features.declaration import (
    DAY,
    HOUR,
    Amount,
    Declaration,
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
DECLARATION = BASELINE
