"""The simulated world, drawn once from the seed: terminals, customers and their subscriptions.

Terminals are points of sale of four kinds: shops on a 100 x 100 map (card present or
contactless), online shops (e-commerce), mail and telephone order merchants, and subscription
merchants (recurring payments). Shops are reached by the customers living within `radius`;
online, MOTO and subscription merchants by everyone.

Merchant popularity is heavy-tailed: within each kind, the merchant of popularity rank r draws
weight 1/r (Zipf's law with exponent 1, the size law of firms, Axtell 2001, Science 293). A
customer picks among the terminals they can reach in proportion to popularity, so a few large
online shops carry several percent of all payments while most merchants see a handful a day.
`merchant_sizes="uniform"` gives every merchant weight 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial import cKDTree

from fraudsvc.datagen import catalog as cat
from fraudsvc.datagen.config import GeneratorConfig

DAY_SECONDS = 86_400
MAP_SIZE = 100.0
MAX_TERMINALS_PER_CUSTOMER = 64
QUERY_BLOCK = 16_384
NEW_PHONE_SLOT = 3  # devices are slots 0-2; slot 3 is the phone that replaces slot 0
MAX_IPS = 4


@dataclass(frozen=True)
class WeightedChoice:
    """Pick one item per row among its group's candidates, in proportion to their weights.

    All groups' cumulative shares are laid out in one sorted array (group g holds g + share), so
    one searchsorted picks for millions of rows of different groups at once.
    """

    keys: np.ndarray
    items: np.ndarray

    @classmethod
    def build(cls, sizes: np.ndarray, items: np.ndarray, weights: np.ndarray) -> WeightedChoice:
        """Groups of `sizes` consecutive candidates in `items`, with their `weights`; every
        group needs a positive weight."""
        cum = np.cumsum(weights)
        before = np.r_[0.0, cum][np.r_[0, np.cumsum(sizes)[:-1]]]  # total of earlier groups
        within = cum - np.repeat(before, sizes)
        total = np.repeat(within[np.cumsum(sizes) - 1], sizes)
        # x / x is exactly 1.0: the last key of group g is g + 1
        keys = np.repeat(np.arange(sizes.size), sizes) + within / total
        return cls(keys=keys, items=items)

    def pick(self, group: np.ndarray, u: np.ndarray) -> np.ndarray:
        # u < 1 - 1e-9 keeps g + u below g + 1 in float64 for any realistic number of groups
        at = np.searchsorted(self.keys, group + np.minimum(u, 1 - 1e-9), side="right")
        return np.asarray(self.items[at])


@dataclass(frozen=True)
class Terminals:
    kind: np.ndarray  # catalog.PHYSICAL, ONLINE, MOTO, SUBSCRIPTION
    xy: np.ndarray  # (terminals, 2); used for shops only
    popularity: np.ndarray  # relative weight within the terminal's kind
    mcc: np.ndarray  # index into catalog.MCC_CODES
    country: np.ndarray  # index into catalog.COUNTRIES
    pools: dict[int, np.ndarray]  # terminal indexes of each kind
    daily_volume: np.ndarray  # expected genuine payments per day (shops only, else 0)
    subscription_price: np.ndarray  # base monthly price of a subscription merchant
    billing_second: np.ndarray  # when a subscription merchant bills, seconds into the day


@dataclass(frozen=True)
class Customers:
    home: np.ndarray  # (customers, 2)
    mean_amount: np.ndarray
    std_amount: np.ndarray
    tx_per_day: np.ndarray
    peak_hour: np.ndarray
    night_share: np.ndarray
    weekend_factor: np.ndarray
    online_share: np.ndarray  # share of own purchases made online
    moto_share: np.ndarray  # ... by mail or telephone order
    contactless_share: np.ndarray  # share of eligible shop payments made contactless
    card_country: np.ndarray  # index into catalog.COUNTRIES
    devices: np.ndarray  # 1-3 devices used to shop online
    device_switch: np.ndarray  # seconds from start when the first device is replaced
    ips: np.ndarray  # 1-4 usual IP addresses (home, mobile, work...)


@dataclass(frozen=True)
class Subscriptions:
    """Monthly recurring payments, billed on a fixed day of the month at a fixed time."""

    customer: np.ndarray
    terminal: np.ndarray
    price: np.ndarray
    variable: np.ndarray  # usage-based bills vary a little month to month
    day_of_month: np.ndarray  # 1-28
    second: np.ndarray  # seconds into the billing day
    first_month: np.ndarray  # months from the start's month (negative: started before)
    end_month: np.ndarray  # exclusive


@dataclass(frozen=True)
class World:
    customers: Customers
    terminals: Terminals
    local: WeightedChoice  # shops near each customer (group = customer)
    national: dict[int, WeightedChoice]  # ONLINE, MOTO, SUBSCRIPTION pools (group 0)
    subscriptions: Subscriptions
    salt: int  # makes device ids and IP addresses depend on the seed


def _popularity(
    cfg: GeneratorConfig, visits: np.ndarray, preference: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A merchant's size: 1 / its rank (Zipf), times `visits` (how often its trade is visited)
    and `preference` (customers favour domestic shops). Ranks are drawn at random but favour
    often-visited trades, so the largest shops are mostly supermarkets, not jewellers."""
    if cfg.merchant_sizes == "uniform":
        return np.ones(visits.size)
    score = visits * rng.lognormal(0.0, 1.0, size=visits.size)
    rank = np.empty(visits.size)
    rank[np.argsort(-score, kind="stable")] = np.arange(1, visits.size + 1)
    return np.asarray(visits * preference / rank)


def _terminal_kinds(cfg: GeneratorConfig, rng: np.random.Generator) -> np.ndarray:
    kind = np.full(cfg.terminals, cat.PHYSICAL, dtype=np.int8)
    start = 0
    order = rng.permutation(cfg.terminals)  # ids do not reveal a terminal's kind
    for k, share in cat.KIND_SHARES.items():
        n = int(cfg.terminals * share)
        kind[order[start : start + n]] = k
        start += n
    return kind


def make_terminals(cfg: GeneratorConfig, rng: np.random.Generator) -> Terminals:
    kind = _terminal_kinds(cfg, rng)
    n = cfg.terminals
    popularity = np.zeros(n)
    mcc = np.zeros(n, dtype=np.int64)
    country = np.full(n, cat.HOME, dtype=np.int64)
    pools = {k: np.flatnonzero(kind == k) for k in (cat.PHYSICAL, *cat.KIND_SHARES)}
    for k, pool in pools.items():
        mcc[pool], visits = cat.draw_mccs(rng, k, pool.size)
        is_abroad = rng.random(pool.size) < cat.FOREIGN_MERCHANT_SHARE[k]
        country[pool[is_abroad]] = cat.draw_countries(
            rng, cat.FOREIGN_MERCHANT_COUNTRIES, int(is_abroad.sum())
        )
        preference = np.where(is_abroad, cat.HOME_BIAS, 1.0)
        popularity[pool] = _popularity(cfg, visits, preference, rng)
    prices = np.zeros((n, 2))  # monthly price range, for subscription merchants
    for code, price_range in cat.SUBSCRIPTION_PRICES.items():
        prices[mcc == cat.MCC_INDEX[code]] = price_range
    return Terminals(
        kind=kind,
        xy=rng.uniform(0, MAP_SIZE, size=(n, 2)),
        popularity=popularity,
        mcc=mcc,
        country=country,
        pools=pools,
        daily_volume=np.zeros(n),
        subscription_price=np.round(rng.uniform(prices[:, 0], prices[:, 1]), 2),
        billing_second=rng.integers(0, 24, size=n) * 3_600,
    )


def make_customers(
    cfg: GeneratorConfig, terminals: Terminals, rng: np.random.Generator
) -> Customers:
    n = cfg.customers
    mean_amount = rng.uniform(5, 100, size=n)
    has_online = terminals.pools[cat.ONLINE].size > 0
    has_moto = terminals.pools[cat.MOTO].size > 0
    card_country = np.full(n, cat.HOME, dtype=np.int64)
    abroad = np.flatnonzero(rng.random(n) < cat.FOREIGN_CARD_SHARE)
    card_country[abroad] = cat.draw_countries(rng, cat.FOREIGN_CARD_COUNTRIES, abroad.size)
    switches = rng.random(n) < 0.2  # a new phone during the period for one customer in five
    span = cfg.days * DAY_SECONDS
    return Customers(
        home=rng.uniform(0, MAP_SIZE, size=(n, 2)),
        mean_amount=mean_amount,
        std_amount=mean_amount / 2,
        tx_per_day=rng.uniform(0.2, 4.0, size=n),
        peak_hour=rng.normal(14.0, 2.5, size=n).clip(8, 21),
        night_share=rng.beta(1, 30, size=n),
        weekend_factor=rng.uniform(0.5, 1.5, size=n),
        online_share=rng.beta(2, 9, size=n) * has_online,
        moto_share=rng.beta(0.5, 50, size=n) * has_moto,
        contactless_share=rng.beta(8, 2, size=n),
        card_country=card_country,
        devices=rng.choice([1, 2, 3], size=n, p=[0.5, 0.38, 0.12]),
        device_switch=np.where(switches, rng.integers(0, span, size=n), span),
        ips=rng.choice([1, 2, 3, 4], size=n, p=[0.3, 0.35, 0.25, 0.1]),
    )


def _local_choice(
    cfg: GeneratorConfig, customers: Customers, terminals: Terminals
) -> tuple[WeightedChoice, np.ndarray]:
    """Each customer's shops within `radius` (at least the nearest), weighted by popularity;
    also the expected genuine payments per day at every terminal this gives."""
    shops = terminals.pools[cat.PHYSICAL]
    k = min(MAX_TERMINALS_PER_CUSTOMER, shops.size)
    tree = cKDTree(terminals.xy[shops])
    blocks: list[np.ndarray] = []
    block_sizes: list[np.ndarray] = []
    # in blocks of customers, so the k-nearest arrays stay small for any number of customers
    for first in range(0, cfg.customers, QUERY_BLOCK):
        home = customers.home[first : first + QUERY_BLOCK]
        distances, nearest = tree.query(home, k=k)
        usable = distances.reshape(len(home), k) <= cfg.radius
        usable[:, 0] = True
        # only the usable neighbours, customer after customer, nearest first
        blocks.append(shops[nearest.reshape(len(home), k)[usable]])
        block_sizes.append(usable.sum(axis=1))
    nearby, sizes = np.concatenate(blocks), np.concatenate(block_sizes)
    customer = np.repeat(np.arange(cfg.customers), sizes)
    weights = terminals.popularity[nearby]
    share = weights / np.bincount(customer, weights=weights)[customer]
    days_per_week = (5 + 2 * customers.weekend_factor) / 7
    local_rate = (
        customers.tx_per_day * days_per_week * (1 - customers.online_share - customers.moto_share)
    )
    volume = np.bincount(nearby, weights=share * local_rate[customer], minlength=cfg.terminals)
    return WeightedChoice.build(sizes, nearby, weights), volume


def _national_choice(terminals: Terminals, kind: int) -> WeightedChoice:
    pool = terminals.pools[kind]
    if pool.size == 0:  # nobody picks from an empty pool (their shares are zero)
        return WeightedChoice(keys=np.ones(1), items=np.zeros(1, dtype=np.int64))
    return WeightedChoice.build(np.array([pool.size]), pool, terminals.popularity[pool])


def make_subscriptions(
    cfg: GeneratorConfig, terminals: Terminals, pick: WeightedChoice, rng: np.random.Generator
) -> Subscriptions:
    per_customer = np.minimum(rng.poisson(2.5, size=cfg.customers), 8)
    if terminals.pools[cat.SUBSCRIPTION].size == 0:
        per_customer[:] = 0
    customer = np.repeat(np.arange(cfg.customers), per_customer)
    terminal = pick.pick(np.zeros(customer.size), rng.random(customer.size))
    # one subscription per customer and merchant
    _, first_of_pair = np.unique(customer * cfg.terminals + terminal, return_index=True)
    keep = np.sort(first_of_pair)
    customer, terminal = customer[keep], terminal[keep]
    n = customer.size
    plan = rng.choice([1.0, 1.0, 1.0, 1.5, 2.0], size=n)  # family and premium plans
    months = cfg.days // 28 + 2
    first = rng.integers(-24, months, size=n)
    return Subscriptions(
        customer=customer,
        terminal=terminal,
        price=np.round(terminals.subscription_price[terminal] * plan, 2),
        variable=np.isin(terminals.mcc[terminal], [cat.MCC_INDEX[c] for c in cat.VARIABLE_BILLS]),
        day_of_month=rng.integers(1, 29, size=n),
        second=terminals.billing_second[terminal] + rng.integers(0, 3_600, size=n),
        first_month=first,
        end_month=first + rng.geometric(1 / 20, size=n),  # kept about 20 months on average
    )


def make_world(cfg: GeneratorConfig, rng: np.random.Generator) -> World:
    terminals = make_terminals(cfg, rng)
    customers = make_customers(cfg, terminals, rng)
    local, volume = _local_choice(cfg, customers, terminals)
    terminals = replace(terminals, daily_volume=volume)
    national = {k: _national_choice(terminals, k) for k in cat.KIND_SHARES}
    return World(
        customers=customers,
        terminals=terminals,
        local=local,
        national=national,
        subscriptions=make_subscriptions(cfg, terminals, national[cat.SUBSCRIPTION], rng),
        salt=int(rng.integers(0, 2**62)),
    )
