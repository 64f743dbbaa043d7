"""The fraud scenarios, scheduled for the whole period from the seed before any payment exists.

Two kinds of scenario. Window scenarios turn genuine payments into fraud while they last:
a compromised terminal (a skimmer: its payments are fraud for one to four weeks; in a busy
shop only one till is skimmed, so only a share of its payments) and a compromised card (for
two weeks a third of the customer's payments are fraud, amounts x5). Injected scenarios add
fraudsters' payments, drawn here in full: a large amount, card-testing bursts, card-not-present
fraud from abroad on a new device, and cashing out in high-risk merchant categories.

Each fraud event has an actor id (scenario and event number): the fraudster's device and
connection are derived from it, so all payments of one event share them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudsvc.datagen import catalog as cat
from fraudsvc.datagen.config import (
    CARD_TESTING,
    CNP_ABROAD,
    COMPROMISED_CARD,
    COMPROMISED_TERMINAL,
    LARGE_AMOUNT,
    RISKY_CATEGORIES,
    GeneratorConfig,
)
from fraudsvc.datagen.payments import rows_of
from fraudsvc.datagen.world import DAY_SECONDS, World

# payments a day one till takes: a skimmer sits on one till, so a shop with n tills has 1 / n of
# its payments skimmed
PAYMENTS_PER_TILL = 30.0
ACTOR_SHIFT = 32  # actor = scenario << 32 | event number


@dataclass(frozen=True)
class WindowEvents:
    key: np.ndarray  # terminal or customer index
    start: np.ndarray  # seconds from the start
    end: np.ndarray
    share: np.ndarray  # share of the key's payments in the window that are fraud


@dataclass(frozen=True)
class Schedule:
    terminals: WindowEvents
    cards: WindowEvents
    injected: dict[str, np.ndarray]  # rows: seconds, customer, terminal, amount, scenario, actor


def _events(rng: np.random.Generator, rate_per_1000: float, population: int, days: int) -> int:
    return int(rng.poisson(rate_per_1000 * population / 1000.0 * days))


def _pick(
    rng: np.random.Generator, world: World, pool: np.ndarray, weights: np.ndarray, size: int
) -> np.ndarray:
    """`size` terminals of `pool` in proportion to `weights`; any shop or online shop when a
    small world has no terminal of the kind asked for."""
    if pool.size == 0:
        pool = _purchase_terminals(world)
        weights = np.ones(pool.size)
    return pool[rng.choice(pool.size, size=size, p=weights / weights.sum())]


def _rows(
    scenario: int,
    seconds: np.ndarray,
    customer: np.ndarray,
    terminal: np.ndarray,
    amount: np.ndarray,
    event: np.ndarray,
) -> dict[str, np.ndarray]:
    rows = rows_of(seconds, customer, terminal, amount)
    rows["scenario"][:] = scenario
    rows["actor"] = (np.int64(scenario) << ACTOR_SHIFT) + event.astype(np.int64)
    return rows


def _bursts(
    rng: np.random.Generator, n: int, sizes: np.ndarray, gaps: np.ndarray, span: int
) -> tuple[np.ndarray, np.ndarray]:
    """Event number and time of every payment of `n` bursts; `gaps` are seconds between
    consecutive payments (one per payment, the first of each burst ignored)."""
    event = np.repeat(np.arange(n), sizes)
    offsets = np.cumsum(gaps)
    if n:
        first = np.r_[0, np.cumsum(sizes)[:-1]]
        offsets = offsets - np.repeat(offsets[first], sizes)
    start = rng.integers(0, span, size=n)
    return event, np.repeat(start, sizes) + offsets


def _card_testing(
    cfg: GeneratorConfig, world: World, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """5-20 small amounts seconds to a minute apart at one online shop (where card numbers are
    tried out by scripts)."""
    n = _events(rng, cfg.card_testing_rate, cfg.customers, cfg.days)
    sizes = rng.integers(5, 21, size=n)
    event, seconds = _bursts(
        rng, n, sizes, rng.integers(5, 60, size=sizes.sum()), cfg.days * DAY_SECONDS
    )
    online = world.terminals.pools[cat.ONLINE]
    return _rows(
        CARD_TESTING,
        seconds,
        np.repeat(rng.integers(0, cfg.customers, size=n), sizes),
        np.repeat(_pick(rng, world, online, np.ones(online.size), n), sizes),
        rng.uniform(0.5, 5.0, size=sizes.sum()),
        event,
    )


def _large_amounts(
    cfg: GeneratorConfig, world: World, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """One payment 5-20x the customer's habit (at least 300) at any terminal."""
    n = _events(rng, cfg.large_amount_rate, cfg.customers, cfg.days)
    customer = rng.integers(0, cfg.customers, size=n)
    shops = _purchase_terminals(world)
    amount = np.maximum(
        world.customers.mean_amount[customer] * rng.uniform(5, 20, size=n),
        rng.uniform(300, 2_500, size=n),
    )
    seconds = rng.integers(0, cfg.days * DAY_SECONDS, size=n)
    return _rows(
        LARGE_AMOUNT,
        seconds,
        customer,
        _pick(rng, world, shops, np.ones(shops.size), n),
        amount,
        np.arange(n),
    )


def _cnp_abroad(
    cfg: GeneratorConfig, world: World, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """A stolen card used online from a new device abroad: 1-8 payments within hours, mostly at
    foreign online shops."""
    n = _events(rng, cfg.cnp_abroad_rate, cfg.customers, cfg.days)
    sizes = np.minimum(rng.geometric(0.35, size=n), 8)
    gaps = rng.exponential(1_500, size=sizes.sum()).astype(np.int64) + 60
    event, seconds = _bursts(rng, n, sizes, gaps, cfg.days * DAY_SECONDS)
    t = world.terminals
    online = t.pools[cat.ONLINE]
    abroad = online[t.country[online] != cat.HOME]
    domestic = online[t.country[online] == cat.HOME]
    if abroad.size == 0 or domestic.size == 0:  # a small world: any online shop will do
        abroad = domestic = online
    m = sizes.sum()
    terminal = np.where(
        rng.random(m) < 0.8,
        _pick(rng, world, abroad, t.popularity[abroad], m),
        _pick(rng, world, domestic, t.popularity[domestic], m),
    )
    customer = np.repeat(rng.integers(0, cfg.customers, size=n), sizes)
    # amounts that do not stand out: about one and a half times the customer's usual
    usual = world.customers.mean_amount[customer]
    amount = (usual * np.exp(rng.normal(0.4, 0.5, size=m))).clip(5, 3_000)
    return _rows(CNP_ABROAD, seconds, customer, terminal, amount, event)


def _risky_categories(
    cfg: GeneratorConfig, world: World, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """A compromised card cashed out over hours to three days: 2-10 payments, most of them in
    electronics, money transfer, betting, gift cards, jewellery or digital games."""
    n = _events(rng, cfg.risky_categories_rate, cfg.customers, cfg.days)
    sizes = np.minimum(2 + rng.poisson(2.5, size=n), 10)
    duration = rng.integers(2 * 3_600, 3 * DAY_SECONDS, size=n)
    event = np.repeat(np.arange(n), sizes)
    offsets = (rng.random(sizes.sum()) * np.repeat(duration, sizes)).astype(np.int64)
    seconds = np.repeat(rng.integers(0, cfg.days * DAY_SECONDS, size=n), sizes) + offsets
    t = world.terminals
    shops = _purchase_terminals(world)
    risky = shops[cat.IS_HIGH_RISK_MCC[t.mcc[shops]]]
    m = sizes.sum()
    terminal = np.where(
        rng.random(m) < 0.85,
        _pick(rng, world, risky, t.popularity[risky], m),
        _pick(rng, world, shops, np.ones(shops.size), m),
    )
    amount = np.exp(rng.normal(np.log(250), 0.7, size=m)).clip(10, 5_000)
    return _rows(
        RISKY_CATEGORIES,
        seconds,
        np.repeat(rng.integers(0, cfg.customers, size=n), sizes),
        terminal,
        amount,
        event,
    )


def _purchase_terminals(world: World) -> np.ndarray:
    """Where a fraudster can pay at will: shops and online shops."""
    kind = world.terminals.kind
    return np.flatnonzero((kind == cat.PHYSICAL) | (kind == cat.ONLINE))


def make_schedule(cfg: GeneratorConfig, world: World, rng: np.random.Generator) -> Schedule:
    span = cfg.days * DAY_SECONDS
    shops = world.terminals.pools[cat.PHYSICAL]
    volume = world.terminals.daily_volume
    n_term = _events(rng, cfg.compromised_terminal_rate, cfg.terminals, cfg.days)
    # skimmers go where cards are: small and mid-sized shops mostly, rarely the few giants
    skimmed = _pick(rng, world, shops, volume[shops] ** 0.25 + 1e-9, n_term)
    term_start = rng.integers(0, span, size=n_term)
    n_card = _events(rng, cfg.compromised_card_rate, cfg.customers, cfg.days)
    card_start = rng.integers(0, span, size=n_card)
    parts = [
        _large_amounts(cfg, world, rng),
        _card_testing(cfg, world, rng),
        _cnp_abroad(cfg, world, rng),
        _risky_categories(cfg, world, rng),
    ]
    return Schedule(
        terminals=WindowEvents(
            key=skimmed,
            start=term_start,
            end=term_start + rng.integers(7, 29, size=n_term) * DAY_SECONDS,
            share=1.0 / np.maximum(1.0, np.ceil(volume[skimmed] / PAYMENTS_PER_TILL)),
        ),
        cards=WindowEvents(
            key=rng.integers(0, cfg.customers, size=n_card),
            start=card_start,
            end=card_start + 14 * DAY_SECONDS,
            share=np.full(n_card, 1 / 3),
        ),
        injected={k: np.concatenate([p[k] for p in parts]) for k in parts[0]},
    )


def active_event(events: WindowEvents, row_keys: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Index of an event of each row's key active at its time (start <= t < end), else -1."""
    found = np.full(row_keys.size, -1, dtype=np.int64)
    if events.key.size == 0:
        return found
    order = np.argsort(events.key, kind="stable")
    keys, starts, ends = events.key[order], events.start[order], events.end[order]
    lo = np.searchsorted(keys, row_keys, side="left")
    hi = np.searchsorted(keys, row_keys, side="right")
    # each key has few events: loop over the k-th event of every row's key
    for k in range(int((hi - lo).max(initial=0))):
        idx = lo + k
        j = np.where(idx < hi, idx, 0)
        hit = (idx < hi) & (seconds >= starts[j]) & (seconds < ends[j]) & (found < 0)
        found[hit] = order[j[hit]]
    return found


def mark_window_frauds(
    rows: dict[str, np.ndarray], sched: Schedule, rng: np.random.Generator
) -> None:
    """Turn genuine payments caught by a compromised terminal or card into fraud, in place."""
    term = active_event(sched.terminals, rows["terminal"], rows["seconds"])
    card = active_event(sched.cards, rows["customer"], rows["seconds"])
    # index -1 (no event) reads the appended 0: no share of the payment is fraud
    term_share = np.r_[sched.terminals.share, 0.0][term]
    card_share = np.r_[sched.cards.share, 0.0][card]
    on_terminal = rng.random(term.size) < term_share
    on_card = (rng.random(card.size) < card_share) & ~on_terminal
    rows["amount"] = np.where(on_card, rows["amount"] * 5, rows["amount"])
    rows["scenario"][on_terminal] = COMPROMISED_TERMINAL
    rows["scenario"][on_card] = COMPROMISED_CARD
    rows["actor"][on_card] = (np.int64(COMPROMISED_CARD) << ACTOR_SHIFT) + card[on_card]
