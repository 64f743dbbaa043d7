"""The demo's analyst at work: signs in at /review as a person would (the same forms, cookies
and CSRF tokens a browser sends), claims the case at the top of the queue, gives the verdict and
reads the label back through the JSON API.

The verdict is the generator's truth for that payment: the demo has no person to ask, and a
verdict that matches the truth is what a careful analyst would give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from urllib.parse import unquote

import httpx
import polars as pl

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CASE = re.compile(r'<a href="/review/([^"?/]+)">')
_OPEN = re.compile(r'<span class="count">(\d+) open')


@dataclass(frozen=True)
class Worked:
    transaction_id: str
    verdict: str
    label: dict[str, object] | None
    left: int


def form_token(html: str) -> str:
    """The CSRF token of the page's form (the pages put one in every form)."""
    found = _CSRF.search(html)
    if found is None:
        raise RuntimeError("the review page has no form with a CSRF token")
    return unescape(found.group(1))


async def work_top_case(
    url: str, api_key: str, analyst: str, password: str, frame: pl.DataFrame
) -> Worked | None:
    """None when the queue is empty."""
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as web:
        form = await web.get("/review/sign-in")
        signed = await web.post(
            "/review/sign-in",
            data={"csrf_token": form_token(form.text), "name": analyst, "password": password},
        )
        if signed.status_code != 303:
            raise RuntimeError(f"the demo analyst could not sign in ({signed.status_code})")
        queue = await web.get("/review")
        cases = [unquote(tid) for tid in _CASE.findall(queue.text)]
        if not cases:
            return None
        tid = cases[0]
        page = await web.get(f"/review/{tid}")
        token = form_token(page.text)
        await web.post(f"/review/{tid}/claim", data={"csrf_token": token})
        truth = frame.filter(pl.col("transaction_id") == tid)["is_fraud"].to_list()
        verdict = "fraud" if truth and truth[0] == 1 else "genuine"
        done = await web.post(
            f"/review/{tid}/verdict",
            data={
                "csrf_token": token,
                "verdict": verdict,
                "note": "make demo: the generator's truth for this payment",
            },
        )
        if done.status_code != 303:
            raise RuntimeError(f"the verdict was refused ({done.status_code})")
        after = _OPEN.search((await web.get("/review")).text)
        left = int(after.group(1)) if after else 0
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as api:
        detail = await api.get(f"/v1/transactions/{tid}", headers={"X-API-Key": api_key})
    label = detail.json().get("label") if detail.status_code == 200 else None
    return Worked(tid, verdict, label, left)


def lines(worked: Worked | None, analyst: str) -> list[str]:
    if worked is None:
        return [f"review queue: empty, so {analyst} had nothing to work"]
    label = worked.label or {}
    return [
        f"review queue: {analyst} signed in at /review, claimed the top case "
        f"{worked.transaction_id} and marked it {worked.verdict}; the API now shows its label "
        f"is_fraud={label.get('is_fraud')} source={label.get('source')}; "
        f"{worked.left} cases left in the queue"
    ]
