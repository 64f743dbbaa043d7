"""The demo's analyst: a list and a ruleset through the admin API, and what they did.

Before the replay, the way a fraud team answers what the history shows: a list of the
terminals with two or more chargebacks among the payments of the week before the label delay (a
skimmer keeps working until it is found), live rules on it (a card-present payment there goes
to review, a large one is blocked), a live review rule for a card's first e-commerce payment
from a new device abroad, and a shadow rule tried on live traffic before it acts. After the
replay, the chargebacks of the replayed payments (which arrive over the following weeks) are
posted at once, and the live ruleset is backtested on the replayed period against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import polars as pl

from fraudsvc.admin_schemas import BacktestOut
from fraudsvc.replay import LABEL_SOURCE
from fraudsvc.rules_service import backtest_lines

LIST_NAME = "compromised_terminals"
CHARGEBACK_WINDOW = timedelta(days=7)
LABEL_DELAY = timedelta(days=7)
LISTED_FOR = timedelta(days=28)
SKIMMED = f'terminal_id in @{LIST_NAME} and channel != "ecommerce"'
RULES = [
    {
        "id": "skimmed_terminal_large",
        "expression": f"{SKIMMED} and amount > 200",
        "action": "block",
        "description": "a large card payment at a terminal with repeated chargebacks",
    },
    {
        "id": "skimmed_terminal",
        "expression": SKIMMED,
        "action": "review",
        "description": "a card payment at a terminal with repeated chargebacks",
    },
    {
        "id": "new_device_abroad",
        "expression": 'channel == "ecommerce" and customer_device_nb_tx_30d == 1 '
        "and cross_border == 1",
        "action": "review",
        "description": "a card's first payment from this device, from abroad",
    },
    {
        "id": "first_mcc_big_amount",
        "expression": "customer_mcc_nb_tx_30d == 1 and amount > 300",
        "action": "block",
        "mode": "shadow",
        "description": "tried on live traffic first: cash-out in a category new to the card",
    },
]


@dataclass(frozen=True)
class Published:
    version: int
    listed: int


def compromised_terminals(frame: pl.DataFrame, cut: datetime) -> list[dict[str, str]]:
    """Terminals with two or more frauds among the payments of the week whose chargebacks had
    arrived by `cut`, as list entries that expire four weeks from now (expiry is checked
    against the wall clock when scoring, and the demo's data may lie in the past)."""
    known = frame.filter(
        (pl.col("is_fraud") == 1)
        & (pl.col("timestamp") + LABEL_DELAY <= cut)
        & (pl.col("timestamp") > cut - CHARGEBACK_WINDOW - LABEL_DELAY)
    )
    counts = known.group_by("terminal_id").len().filter(pl.col("len") >= 2)
    expires = (datetime.now(UTC) + LISTED_FOR).isoformat()
    return [
        {"value": t, "reason": f"{n} chargebacks in a week", "expires_at": expires}
        for t, n in counts.sort("terminal_id").iter_rows()
    ]


async def publish(client: httpx.AsyncClient, frame: pl.DataFrame, cut: datetime) -> Published:
    """Define the list, fill it, store the ruleset and make it live (each call audited)."""
    entries = compromised_terminals(frame, cut)
    description = "terminals with repeated chargebacks (the demo's analyst)"
    _ok(
        await client.put(
            f"/v1/lists/{LIST_NAME}", json={"kind": "terminal", "description": description}
        )
    )
    if entries:  # the list's whole content: terminals listed by an earlier run go
        _ok(
            await client.put(
                f"/v1/lists/{LIST_NAME}/entries", json={"entries": entries, "source": "demo"}
            )
        )
    body = {"description": "the demo's answer to the history", "rules": RULES}
    version = int(_ok(await client.post("/v1/rulesets", json=body))["version"])
    _ok(await client.post(f"/v1/rulesets/{version}/publish"))
    return Published(version, len(entries))


async def post_chargebacks(client: httpx.AsyncClient, frauds: list[str]) -> int:
    """The fraud labels of replayed payments, which the replay would post only once the label
    delay has passed in the stream's time."""
    for tid in frauds:
        _ok(
            await client.post(
                f"/v1/transactions/{tid}/label",
                json={"is_fraud": True, "source": LABEL_SOURCE},
            )
        )
    return len(frauds)


async def backtest(
    client: httpx.AsyncClient, version: int, start: datetime, end: datetime
) -> list[str]:
    body = {"start": start.isoformat(), "end": end.isoformat()}
    answer = _ok(await client.post(f"/v1/rulesets/{version}/backtest", json=body))
    return backtest_lines(msgspec.convert(answer, BacktestOut, strict=False))


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text}"
        )
    return response.json() if response.content else None
