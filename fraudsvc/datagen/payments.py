"""Customers' genuine payments over a chunk of whole days: everyday purchases and subscriptions.

Everyday purchases keep the Handbook's rhythm (a Poisson number a day per customer, a preferred
hour, a little at night, a weekend habit, amounts around the customer's mean); each one goes
online, to a mail or telephone order merchant, or to a shop near home, by the customer's own
shares, and to a merchant of that kind in proportion to its popularity. Subscriptions are billed
monthly on their day of the month, same merchant, same or similar amount.
"""

from __future__ import annotations

import numpy as np

from fraudsvc.datagen import catalog as cat
from fraudsvc.datagen.config import GENUINE, GeneratorConfig
from fraudsvc.datagen.world import DAY_SECONDS, World

ROW_KEYS = ("seconds", "customer", "terminal", "amount", "scenario", "actor", "cycle")


def rows_of(
    seconds: np.ndarray,
    customer: np.ndarray,
    terminal: np.ndarray,
    amount: np.ndarray,
    cycle: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Genuine rows; `actor` (-1) and `scenario` are filled in by the fraud scenarios."""
    n = seconds.size
    return {
        "seconds": seconds.astype(np.int64),
        "customer": customer.astype(np.int64),
        "terminal": terminal.astype(np.int64),
        "amount": amount,
        "scenario": np.full(n, GENUINE, dtype=np.int8),
        "actor": np.full(n, -1, dtype=np.int64),
        "cycle": np.zeros(n, dtype=np.int64) if cycle is None else cycle.astype(np.int64),
    }


def everyday(
    world: World, cfg: GeneratorConfig, day0: int, day1: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    c = world.customers
    days = np.arange(day0, day1)
    weekday = (cfg.start.weekday() + days) % 7
    weekend = weekday >= 5
    rate = c.tx_per_day[:, None] * np.where(weekend[None, :], c.weekend_factor[:, None], 1.0)
    counts = rng.poisson(rate)  # (customers, days)
    customer = np.repeat(np.arange(cfg.customers), counts.sum(axis=1))
    day = np.repeat(np.tile(days, cfg.customers), counts.ravel())
    n = customer.size
    night = rng.random(n) < c.night_share[customer]
    hour = np.where(
        night,
        rng.uniform(0, 6, size=n),
        rng.normal(c.peak_hour[customer], 3.0).clip(6.0, 23.999),
    )
    seconds = day * DAY_SECONDS + (hour * 3600).astype(np.int64)
    terminal = world.local.pick(customer, rng.random(n))
    where = rng.random(n)
    online = where < c.online_share[customer]
    moto = ~online & (where < c.online_share[customer] + c.moto_share[customer])
    for mask, kind in ((online, cat.ONLINE), (moto, cat.MOTO)):
        k = int(mask.sum())
        terminal[mask] = world.national[kind].pick(np.zeros(k), rng.random(k))
    amount = np.abs(rng.normal(c.mean_amount[customer], c.std_amount[customer]))
    return rows_of(seconds, customer, terminal, amount)


def _calendar(cfg: GeneratorConfig, day0: int, day1: int) -> tuple[np.ndarray, np.ndarray]:
    """Month (counted from the start's month) and day of the month of each day, in UTC."""
    first = np.datetime64(int(cfg.start.timestamp()), "s").astype("datetime64[D]")
    dates = first + np.arange(day0, day1)
    months = dates.astype("datetime64[M]")
    month = (months - first.astype("datetime64[M]")).astype(np.int64)
    day_of_month = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    return month, day_of_month


def subscriptions(
    world: World, cfg: GeneratorConfig, day0: int, day1: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The recurring payments due in the chunk."""
    s = world.subscriptions
    month, day_of_month = _calendar(cfg, day0, day1)
    order = np.argsort(s.day_of_month, kind="stable")
    bounds = np.searchsorted(s.day_of_month[order], np.arange(1, 30))  # where day d starts
    due: list[np.ndarray] = []
    for i in range(day1 - day0):
        d = int(day_of_month[i])
        if d > 28:  # billing days are 1-28, as most merchants choose
            due.append(np.zeros(0, dtype=np.int64))
            continue
        subs = order[bounds[d - 1] : bounds[d]]
        due.append(subs[(s.first_month[subs] <= month[i]) & (month[i] < s.end_month[subs])])
    sub = np.concatenate(due)
    sizes = [a.size for a in due]
    day = np.repeat(np.arange(day0, day1), sizes)
    cycle = np.repeat(month, sizes) - s.first_month[sub] + 1
    usage = np.where(s.variable[sub], rng.normal(1.0, 0.08, size=sub.size).clip(0.7, 1.5), 1.0)
    return rows_of(
        day * DAY_SECONDS + s.second[sub],
        s.customer[sub],
        s.terminal[sub],
        s.price[sub] * usage,
        cycle,
    )
