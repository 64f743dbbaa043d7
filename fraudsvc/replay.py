"""`fraudsvc replay`: stream a contract file to a running service, in the file's own time order.

- Transactions are sent in timestamp order. Up to `concurrency` requests are in flight, but never
  two of the same customer, so each one is scored after the customer's earlier transactions are
  stored (the customer windows need them).
- A fraud label is posted once the stream has passed its transaction's time plus the label
  delay, and before any later transaction is sent, exactly as the batch features assume.
- `rate` paces the sends (requests per second); without it the replay goes as fast as the
  service answers.
- With `start`, rows before it are taken as already stored (`fraudsvc backfill --until` the
  same day): they are not sent, but their fraud labels that fall due after `start` are posted
  when they do. Backfill imports exactly the labels due by `until`, so the two together give
  the service the same history as a replay of the whole file.

The report: throughput, client-side latency percentiles, status codes, the decision mix and the
online quality (ROC AUC and average precision of the received scores against the file's labels).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudsvc.features import DECLARATION
from fraudsvc.transaction import OPTIONAL_FIELDS

LABEL_SOURCE = "chargeback"


@dataclass(frozen=True)
class ReplayOptions:
    url: str
    api_key: str
    rate: float | None = None
    concurrency: int = 8
    timeout: float = 30.0
    label_delay: timedelta = timedelta(seconds=DECLARATION.label_delay)
    post_labels: bool = True
    want_reasons: bool = False


@dataclass
class ReplayReport:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    labels_posted: int = 0
    label_failures: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    decisions_by_id: dict[str, str] = field(default_factory=dict)
    truth: dict[str, int] = field(default_factory=dict)
    explanations_pending: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    decided_by: Counter[str] = field(default_factory=Counter)
    """Who made each final decision: `model` or a live rule's id."""
    rule_hits: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    """Per (rule id, mode, action, status): how many responses listed it."""

    @property
    def throughput(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else math.nan

    def quality(self) -> tuple[float, float]:
        ids = [i for i in self.scores if i in self.truth]
        y = np.array([self.truth[i] for i in ids])
        s = np.array([self.scores[i] for i in ids])
        if len(ids) == 0 or y.min() == y.max():
            return math.nan, math.nan
        return float(roc_auc_score(y, s)), float(average_precision_score(y, s))

    def summary(self) -> str:
        auc, ap = self.quality()
        mix = "  ".join(f"{d} {self.decisions.get(d, 0):,}" for d in ("allow", "review", "block"))
        codes = "  ".join(f"{code}: {n:,}" for code, n in sorted(self.statuses.items()))
        lines = [
            "",
            "fraudsvc replay: summary",
            f"  sent          {self.sent:,} transactions in {self.seconds:.1f} s "
            f"({self.throughput:,.0f}/s)",
            f"  latency       p50 {self.percentile(50):.1f} ms   p90 {self.percentile(90):.1f} ms"
            f"   p99 {self.percentile(99):.1f} ms   max {self.percentile(100):.1f} ms",
            f"  statuses      {codes}",
            f"  decisions     {mix}",
            f"  explanations  {self.explanations_pending:,} requested by the policy",
            f"  labels        {self.labels_posted:,} fraud labels posted"
            + (f", {self.label_failures} failed" if self.label_failures else ""),
            f"  online        ROC AUC {auc:.4f}   average precision {ap:.4f}"
            if not math.isnan(auc)
            else "  online        (no labels in the file, or only one class)",
        ]
        if self.rule_hits:
            by_rule = sum(n for who, n in self.decided_by.items() if who != "model")
            lines.append(f"  rules         {by_rule:,} decisions made by a live rule")
            for (rule, mode, action, status), n in sorted(self.rule_hits.items()):
                what = "fired" if status == "fired" else "FAILED"
                lines.append(f"    {rule:<28}{mode:<7}{action:<7}{what} {n:,} times")
        if self.errors:
            lines.append(
                "  errors        " + "; ".join(f"{e} x{n}" for e, n in self.errors.items())
            )
        return "\n".join(lines)


def _payload(row: dict[str, object]) -> dict[str, object]:
    """The scoring request of a checked row: the five fields, and each payment attribute the
    row has (a five-field file sends five-field requests)."""
    ts = row["timestamp"]
    assert isinstance(ts, datetime)
    payload: dict[str, object] = {
        "transaction_id": row["transaction_id"],
        "timestamp": ts.isoformat(),
        "customer_id": row["customer_id"],
        "terminal_id": row["terminal_id"],
        "amount": row["amount"],  # minor units / 100: its shortest repr is the exact decimal
    }
    for name in OPTIONAL_FIELDS:
        value = row.get(name)
        if value is not None:
            payload[name] = json.loads(str(value)) if name == "attributes" else value
    return payload


async def replay(
    frame: pl.DataFrame,
    opt: ReplayOptions,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> ReplayReport:
    """Replay the rows of a checked contract frame (sorted by time) in [start, end), at most
    `limit` of them, against `opt.url`."""
    report = ReplayReport()
    has_labels = "is_fraud" in frame.columns
    if end is not None:
        frame = frame.filter(pl.col("timestamp") < end)
    limits = httpx.Limits(
        max_connections=opt.concurrency, max_keepalive_connections=opt.concurrency
    )
    headers = {"X-API-Key": opt.api_key}
    params = {"reasons": "true"} if opt.want_reasons else None
    gate = asyncio.Semaphore(opt.concurrency)
    last_of_customer: dict[str, asyncio.Task[None]] = {}
    sent_tasks: dict[str, asyncio.Task[None]] = {}
    due: deque[tuple[datetime, str]] = deque()
    if start is not None:
        history = frame.filter(pl.col("timestamp") < start)
        frame = frame.filter(pl.col("timestamp") >= start)
        if has_labels and opt.post_labels:
            late = history.filter(
                (pl.col("is_fraud") == 1) & (pl.col("timestamp") + opt.label_delay > start)
            )
            due.extend(
                (ts + opt.label_delay, tid)
                for ts, tid in late.select("timestamp", "transaction_id").iter_rows()
            )
    if limit is not None:
        frame = frame.head(limit)
    async with httpx.AsyncClient(
        base_url=opt.url, headers=headers, limits=limits, timeout=opt.timeout
    ) as client:

        async def send(row: dict[str, object], before: asyncio.Task[None] | None) -> None:
            try:
                if before is not None:
                    await asyncio.shield(before)
                started = time.perf_counter()
                try:
                    response = await client.post(
                        "/v1/transactions", json=_payload(row), params=params
                    )
                except httpx.HTTPError as exc:
                    report.errors[type(exc).__name__] += 1
                    return
                report.latencies.append(time.perf_counter() - started)
                report.statuses[response.status_code] += 1
                if response.status_code in (200, 201):
                    body = response.json()
                    tid = str(row["transaction_id"])
                    report.decisions[body["decision"]] += 1
                    report.scores[tid] = float(body["score"])
                    report.decisions_by_id[tid] = body["decision"]
                    report.decided_by[body["decided_by"]] += 1
                    for hit in body["rules"]:
                        rule = (hit["id"], hit["mode"], hit["action"], hit["status"])
                        report.rule_hits[rule] += 1
                    if body["explanation"]["status"] != "not_requested":
                        report.explanations_pending += 1
            finally:
                gate.release()

        async def post_label(transaction_id: str) -> None:
            sent = sent_tasks.pop(transaction_id, None)
            if sent is not None:
                await asyncio.shield(sent)
            try:
                response = await client.post(
                    f"/v1/transactions/{transaction_id}/label",
                    json={"is_fraud": True, "source": LABEL_SOURCE},
                )
            except httpx.HTTPError as exc:
                report.label_failures += 1
                report.errors[f"label {type(exc).__name__}"] += 1
                return
            if response.status_code in (200, 201):
                report.labels_posted += 1
            else:
                report.label_failures += 1

        started = time.perf_counter()
        for i, row in enumerate(frame.iter_rows(named=True)):
            ts = row["timestamp"]
            if opt.post_labels and due and due[0][0] <= ts:
                ready = []
                while due and due[0][0] <= ts:
                    ready.append(due.popleft()[1])
                await asyncio.gather(*(post_label(t) for t in ready))
            if opt.rate:
                wait = started + i / opt.rate - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            await gate.acquire()
            customer = str(row["customer_id"])
            task = asyncio.create_task(send(row, last_of_customer.get(customer)))
            last_of_customer[customer] = task
            report.sent += 1
            if has_labels:
                report.truth[str(row["transaction_id"])] = int(row["is_fraud"])
                if row["is_fraud"] == 1 and opt.post_labels:
                    sent_tasks[str(row["transaction_id"])] = task
                    due.append((ts + opt.label_delay, str(row["transaction_id"])))
        await asyncio.gather(*last_of_customer.values())
        report.seconds = time.perf_counter() - started
    return report
