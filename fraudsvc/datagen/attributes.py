"""The payment attributes of contract v2, for payments whose who, where, when and how much are set.

- merchant category, merchant country and currency are the terminal's; card country the
  customer's;
- channel follows the terminal's kind: a shop takes the card (chip) or contactless (up to the
  contactless limit, or any amount with a phone wallet), an online shop e-commerce, a mail or
  telephone order merchant MOTO, a subscription merchant recurring payments. A counterfeit card
  in a shop cannot pay contactless;
- device and IP exist for e-commerce only: usually one of the customer's own one to three
  devices (the first replaced by a new phone for some customers) and few addresses, now and
  then a one-off device or a connection while travelling; fraudsters use their own, the same
  through one fraud event;
- `attributes` carries a few extras on most e-commerce rows (3-D Secure, wallet, the IP's
  country), phone wallets in shops, the entry mode of some chip payments, the address check of
  some MOTO payments, and the cycle number of every recurring payment.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import polars as pl

from fraudsvc.datagen import catalog as cat
from fraudsvc.datagen.config import (
    CNP_ABROAD,
    COMPROMISED_CARD,
    GENUINE,
    LARGE_AMOUNT,
    RISKY_CATEGORIES,
)
from fraudsvc.datagen.identity import device_ids, ip_addresses, mix
from fraudsvc.datagen.world import NEW_PHONE_SLOT, World

KIND_CHANNEL = np.array([cat.CARD_PRESENT, cat.ECOMMERCE, cat.MAIL_PHONE, cat.RECURRING])
# a stolen card number or a cloned card used by the fraudster in person
COUNTERFEIT = (LARGE_AMOUNT, COMPROMISED_CARD, RISKY_CATEGORIES)
# how often a customer uses each of their 1, 2 or 3 devices, cumulative (first two columns)
DEVICE_HABIT = np.array([[1.0, 1.0], [0.65, 1.0], [0.55, 0.85]])
IP_HABIT = np.array([[1.0, 1.0, 1.0], [0.6, 1.0, 1.0], [0.5, 0.8, 1.0], [0.45, 0.7, 0.85]])
ONE_OFF_DEVICE = 0.005  # a work computer, a borrowed phone, a browser reset
TRAVEL_CONNECTION = 0.02  # a hotel or café connection, roaming abroad for a third of them
WALLETS = ("apple_pay", "google_pay", "paypal")
MAX_CYCLE = 600
IS_EEA = np.array([c in cat.EEA for c in cat.COUNTRIES])


@cache
def _strings(name: str) -> pl.Series:
    tables = {
        "country": cat.COUNTRIES,
        "currency": tuple(cat.CURRENCY_OF[c] for c in cat.COUNTRIES),
        "mcc": cat.MCC_CODES,
        "channel": cat.CHANNELS,
    }
    return pl.Series(tables[name])


@cache
def _templates() -> tuple[pl.Series, dict[str, int]]:
    """Every `attributes` value the generator writes, and where each group starts."""
    ecom: list[dict[str, object]] = [
        {"three_ds": secure, **({"wallet": WALLETS[w - 1]} if w else {}), "ip_country": country}
        for secure in (False, True)
        for w in range(len(WALLETS) + 1)
        for country in cat.COUNTRIES
    ]
    groups: dict[str, list[dict[str, object]]] = {
        "ecommerce": ecom,
        "shop_wallet": [{"wallet": w} for w in WALLETS[:2]],
        "chip": [
            {"entry_mode": "chip", "pin_verified": True},
            {"entry_mode": "magstripe", "pin_verified": False},
        ],
        "moto": [{"avs_match": False}, {"avs_match": True}],
        "recurring": [
            {"merchant_initiated": True, "billing_cycle": k} for k in range(1, MAX_CYCLE + 1)
        ],
    }
    start: dict[str, int] = {}
    values: list[str] = []
    for name, items in groups.items():
        start[name] = len(values)
        values += [json.dumps(item) for item in items]
    return pl.Series(values), start


def _with_nulls(n: int, at: np.ndarray, values: pl.Series) -> pl.Series:
    return pl.repeat(None, n, dtype=pl.String, eager=True).scatter(at, values)


def _connections(
    rows: dict[str, np.ndarray], ecom: np.ndarray, world: World, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Device key, IP key and IP country of the e-commerce rows `ecom`."""
    c, salt = world.customers, world.salt
    customer = rows["customer"][ecom]
    actor = rows["actor"][ecom]
    thief = rows["scenario"][ecom] != GENUINE
    m = ecom.size
    slot = (rng.random(m)[:, None] > DEVICE_HABIT[c.devices[customer] - 1]).sum(axis=1)
    replaced = (slot == 0) & (rows["seconds"][ecom] >= c.device_switch[customer])
    slot = np.where(replaced, NEW_PHONE_SLOT, slot)
    device = np.where(
        thief,
        mix(actor, salt + 1),
        np.where(
            rng.random(m) < ONE_OFF_DEVICE,
            rng.integers(0, 2**62, size=m).astype(np.uint64),
            mix(customer * 8 + slot, salt),
        ),
    )
    ip_slot = (rng.random(m)[:, None] > IP_HABIT[c.ips[customer] - 1]).sum(axis=1)
    travel = rng.random(m) < TRAVEL_CONNECTION
    ip = np.where(
        thief,
        mix(actor, salt + 3),
        np.where(
            travel,
            rng.integers(0, 2**62, size=m).astype(np.uint64),
            mix(customer * 8 + ip_slot, salt + 2),
        ),
    )
    abroad = cat.draw_countries(rng, cat.TRAVEL_IP_COUNTRIES, m)
    country = np.where(travel & (rng.random(m) < 1 / 3), abroad, cat.HOME)
    # a fraudster's country is one per event: from the actor, not from a per-row draw
    h = mix(actor, salt + 4)
    codes, p = cat.weighted_codes(cat.FRAUD_IP_COUNTRIES)
    where = np.minimum(np.searchsorted(np.cumsum(p), (h >> np.uint64(11)) / 2.0**53), len(p) - 1)
    thief_country = np.array([cat.COUNTRY_INDEX[code] for code in codes])[where]
    # CNP fraud comes from abroad; a cloned card used online, half the time
    from_abroad = (rows["scenario"][ecom] == CNP_ABROAD) | ((h & np.uint64(1)) == 1)
    country = np.where(thief, np.where(from_abroad, thief_country, cat.HOME), country)
    return device, ip, country


def payment_attributes(
    rows: dict[str, np.ndarray], world: World, rng: np.random.Generator
) -> dict[str, pl.Series]:
    """The contract v2 columns of `rows` (customer, terminal, amount, scenario, actor, cycle)."""
    t, c = world.terminals, world.customers
    customer, terminal, scenario = rows["customer"], rows["terminal"], rows["scenario"]
    n = customer.size
    kind = t.kind[terminal]
    counterfeit = np.isin(scenario, COUNTERFEIT)
    shop = (kind == cat.PHYSICAL) & ~counterfeit
    shop_wallet = shop & (rng.random(n) < 0.15)
    small = rows["amount"] <= cat.CONTACTLESS_LIMIT
    contactless = shop_wallet | (shop & small & (rng.random(n) < c.contactless_share[customer]))
    channel = KIND_CHANNEL[kind]
    channel[contactless] = cat.CONTACTLESS

    templates, start = _templates()
    code = np.full(n, -1, dtype=np.int64)
    ecom = np.flatnonzero(channel == cat.ECOMMERCE)
    device, ip, ip_country = _connections(rows, ecom, world, rng)
    thief = scenario[ecom] != GENUINE
    m = ecom.size
    secure = rng.random(m) < np.where(
        thief, 0.2, np.where(IS_EEA[t.country[terminal[ecom]]], 0.9, 0.3)
    )
    wallet = np.where(rng.random(m) < np.where(thief, 0.03, 0.25), rng.integers(1, 4, size=m), 0)
    ecom_code = (
        start["ecommerce"]
        + (secure * (len(WALLETS) + 1) + wallet) * len(cat.COUNTRIES)
        + ip_country
    )
    code[ecom] = np.where(rng.random(m) < 0.8, ecom_code, -1)  # some gateways send none
    code[shop_wallet] = start["shop_wallet"] + rng.integers(0, 2, size=int(shop_wallet.sum()))
    chip = np.flatnonzero(channel == cat.CARD_PRESENT)
    magstripe = rng.random(chip.size) < np.where(counterfeit[chip], 0.4, 0.01)
    code[chip] = np.where(rng.random(chip.size) < 0.35, start["chip"] + magstripe, -1)
    moto = np.flatnonzero(channel == cat.MAIL_PHONE)
    matched = rng.random(moto.size) < np.where(scenario[moto] != GENUINE, 0.4, 0.95)
    code[moto] = np.where(rng.random(moto.size) < 0.5, start["moto"] + matched, -1)
    recurring = channel == cat.RECURRING
    code[recurring] = start["recurring"] + np.clip(rows["cycle"][recurring], 1, MAX_CYCLE) - 1

    carried = np.flatnonzero(code >= 0)
    return {
        "currency": _strings("currency").gather(t.country[terminal]),
        "merchant_category": _strings("mcc").gather(t.mcc[terminal]),
        "merchant_country": _strings("country").gather(t.country[terminal]),
        "card_country": _strings("country").gather(c.card_country[customer]),
        "channel": _strings("channel").gather(channel),
        "device_id": _with_nulls(n, ecom, device_ids(device, world.salt)),
        "ip": _with_nulls(n, ecom, ip_addresses(ip, world.salt, ip_country == cat.HOME, 0.3)),
        "attributes": _with_nulls(n, carried, templates.gather(code[carried])),
    }
