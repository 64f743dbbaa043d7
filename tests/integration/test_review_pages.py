"""The analysts' review pages against the real service, PostgreSQL and Redis: sign-in and its
throttle, CSRF, which credential opens what, claims between two analysts, the verdict's label,
list entry, audit row and closed case, and attributes that hold markup shown as text."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from fraudsvc.db import analysts
from fraudsvc.settings import Settings
from tests.conftest import clear_rules
from tests.review_support import (
    PASSWORD,
    csrf_of,
    new_analyst,
    publish_review_rule,
    review_case,
    sign_in,
    signed_in,
)
from tests.service import ADMIN_KEY, API_KEY, running_service, service_env

pytestmark = pytest.mark.slow
ATTEMPTS = 3
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
async def api(registry_dir: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The service (with a model) and a live rule that sends payments above 500 to review."""
    env = service_env(
        registry_dir,
        database_url,
        FRAUDSVC_REVIEW_SIGNIN_ATTEMPTS=str(ATTEMPTS),
        FRAUDSVC_EXPLAIN="none",
    )
    async with running_service(Settings.from_env(env)) as client:
        await publish_review_rule(client)
        yield client
    await clear_rules(database_url)


@pytest.fixture
async def no_failures_after(database_url: str) -> AsyncIterator[None]:
    """Failed sign-ins from 127.0.0.1 would throttle every later test's sign-in."""
    yield
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("DELETE FROM signin_failures")
    finally:
        await connection.close()


def base(api: httpx.AsyncClient) -> str:
    return str(api.base_url).rstrip("/")


async def test_an_analyst_signs_in_and_out_with_a_strict_session_cookie(
    api: httpx.AsyncClient, no_failures_after: None
) -> None:
    name = await new_analyst()
    wrong = await sign_in(base(api), name, "not the password at all")
    assert wrong.status_code == 401
    assert "Wrong name or password" in wrong.text
    assert "fraudsvc_review=" not in wrong.headers.get("set-cookie", "")
    assert (await sign_in(base(api), "nobody-" + name, PASSWORD)).status_code == 401

    right = await sign_in(base(api), name, PASSWORD)
    assert right.status_code == 303
    cookie = next(c for c in right.headers.get_list("set-cookie") if "fraudsvc_review=" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/review" in cookie
    assert "Secure" not in cookie  # plain http here; https or the setting adds it

    async with signed_in(base(api), name) as web:
        queue = await web.get("/review")
        assert queue.status_code == 200
        assert name in queue.text
        out = await web.post("/review/sign-out", data={"csrf_token": csrf_of(queue.text)})
        assert out.status_code == 303
        again = await web.get("/review")
        assert again.status_code == 303
        assert again.headers["location"] == "/review/sign-in"


async def test_sign_ins_are_throttled_per_name_and_per_address(
    api: httpx.AsyncClient, no_failures_after: None
) -> None:
    name = await new_analyst()
    for _ in range(ATTEMPTS):
        assert (await sign_in(base(api), name, "wrong password here")).status_code == 401
    throttled = await sign_in(base(api), name, PASSWORD)  # even the right password
    assert throttled.status_code == 429
    assert "Too many failed sign-ins" in throttled.text

    # the address has failed ATTEMPTS times too: another account from it is held off as well
    other = await new_analyst()
    assert (await sign_in(base(api), other, PASSWORD)).status_code == 429


async def test_a_post_without_the_forms_csrf_token_is_refused(api: httpx.AsyncClient) -> None:
    case = await review_case(api)
    tid = case["transaction_id"]
    name = await new_analyst()
    async with signed_in(base(api), name) as web:
        for path, data in [
            (f"/review/{tid}/claim", {}),
            (f"/review/{tid}/claim", {"csrf_token": "forged"}),
            (f"/review/{tid}/verdict", {"verdict": "fraud"}),
            ("/review/sign-out", {}),
        ]:
            refused = await web.post(path, data=data)
            assert refused.status_code == 403, (path, refused.status_code)
        page = await web.get(f"/review/{tid}")
        assert "Claim this case" in page.text  # nothing was claimed
    async with httpx.AsyncClient(base_url=base(api)) as fresh:
        no_cookie = await fresh.post(
            "/review/sign-in", data={"name": name, "password": PASSWORD, "csrf_token": "x"}
        )
        assert no_cookie.status_code == 403


async def test_api_keys_do_not_open_pages_and_sessions_do_not_open_the_api(
    api: httpx.AsyncClient,
) -> None:
    case = await review_case(api)
    for key in (API_KEY, ADMIN_KEY):
        for path in ("/review", f"/review/{case['transaction_id']}"):
            response = await api.get(path, headers={"X-API-Key": key})
            assert response.status_code == 303
            assert response.headers["location"] == "/review/sign-in"
    async with signed_in(base(api), await new_analyst()) as web:
        # the cookie is scoped to /review; sent by hand it still opens nothing in /v1
        token = web.cookies.get("fraudsvc_review")
        assert token
        for path in (f"/v1/transactions/{case['transaction_id']}", "/v1/lists"):
            response = await web.get(path, headers={"Cookie": f"fraudsvc_review={token}"})
            assert response.status_code == 401, path


async def test_two_analysts_never_hold_one_case_and_a_claim_expires(
    api: httpx.AsyncClient, database_url: str
) -> None:
    tid = (await review_case(api))["transaction_id"]
    first, second = await new_analyst("first"), await new_analyst("second")
    async with signed_in(base(api), first) as one, signed_in(base(api), second) as two:
        page_one = await one.get(f"/review/{tid}")
        page_two = await two.get(f"/review/{tid}")
        claimed = await one.post(
            f"/review/{tid}/claim", data={"csrf_token": csrf_of(page_one.text)}
        )
        assert claimed.headers["location"] == f"/review/{tid}?msg=claimed"
        held = await two.post(f"/review/{tid}/claim", data={"csrf_token": csrf_of(page_two.text)})
        assert held.headers["location"] == f"/review/{tid}?msg=held"
        seen = await two.get(f"/review/{tid}")
        assert f"Held by <strong>{first}</strong>" in seen.text
        refused = await two.post(
            f"/review/{tid}/verdict", data={"csrf_token": csrf_of(seen.text), "verdict": "fraud"}
        )
        assert refused.headers["location"] == f"/review/{tid}?msg=claim_first"

        # time passes: the claim's end is moved to the past, as FRAUDSVC_REVIEW_CLAIM_MINUTES would
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(
                "UPDATE review_cases SET claimed_until = now() - interval '1 second' "
                "WHERE transaction_id = $1",
                tid,
            )
        finally:
            await connection.close()
        queue = await two.get("/review")
        row = queue.text.split(f">{tid}</a>", 1)[1].split("</tr>", 1)[0]
        assert "free" in row
        taken = await two.post(f"/review/{tid}/claim", data={"csrf_token": csrf_of(seen.text)})
        assert taken.headers["location"] == f"/review/{tid}?msg=claimed"
        late = await one.post(
            f"/review/{tid}/verdict",
            data={"csrf_token": csrf_of(page_one.text), "verdict": "genuine"},
        )
        assert late.headers["location"] == f"/review/{tid}?msg=claim_first"


async def test_a_verdict_labels_lists_audits_closes_and_opens_the_next_case(
    api: httpx.AsyncClient,
) -> None:
    admin = {"X-API-Key": ADMIN_KEY}
    created = await api.put("/v1/lists/review_customers", json={"kind": "customer"}, headers=admin)
    assert created.status_code in (200, 201)
    case = await review_case(api)
    await review_case(api)  # so that a next case exists
    tid = case["transaction_id"]
    name = await new_analyst()
    async with signed_in(base(api), name) as web:
        page = await web.get(f"/review/{tid}")
        token = csrf_of(page.text)
        await web.post(f"/review/{tid}/claim", data={"csrf_token": token})
        page = await web.get(f"/review/{tid}")
        assert "Record verdict" in page.text
        assert "@review_customers (customer)" in page.text
        done = await web.post(
            f"/review/{tid}/verdict",
            data={
                "csrf_token": token,
                "verdict": "fraud",
                "list": "review_customers",
                "reason": "card testing",
                "note": "confirmed with the cardholder",
            },
        )
        assert done.status_code == 303
        following = done.headers["location"]
        assert re.fullmatch(r"/review/[A-Za-z0-9._:-]+\?msg=done", following), following
        assert not following.startswith(f"/review/{tid}?")
        assert f">{tid}</a>" not in (await web.get("/review")).text  # out of the queue
        closed = await web.get(f"/review/{tid}")
        assert f"Closed by <strong>{name}</strong>" in closed.text

    detail = (await api.get(f"/v1/transactions/{tid}")).json()
    assert detail["label"]["is_fraud"] is True
    assert detail["label"]["source"] == "analyst"
    assert await labelled_by(tid) == name
    customer = detail["transaction"]["customer_id"]
    entries = (await api.get("/v1/lists/review_customers", headers=admin)).json()["entries"]
    entry = next(e for e in entries if e["value"] == customer)
    assert (entry["reason"], entry["source"], entry["added_by"]) == ("card testing", "review", name)
    audit = await api.get("/v1/audit", params={"subject": f"case:{tid}"}, headers=admin)
    trail = {e["action"]: e for e in audit.json() if e["actor"] == name}
    assert set(trail) == {"review.claimed", "review.verdict"}
    assert trail["review.verdict"]["details"]["verdict"] == "fraud"
    assert trail["review.verdict"]["details"]["note"] == "confirmed with the cardholder"


async def labelled_by(transaction_id: str) -> str | None:
    """Who gave the label (the API's label view does not show it)."""
    from fraudsvc.db.queries import fetch_transaction

    stored = await fetch_transaction(transaction_id)
    assert stored is not None
    assert stored.label is not None
    return stored.label.labelled_by


async def test_markup_in_attributes_is_shown_as_text_under_a_strict_csp(
    api: httpx.AsyncClient,
) -> None:
    case = await review_case(api, attributes={"merchant_name": SCRIPT, "memo": IMG})
    tid = case["transaction_id"]
    async with signed_in(base(api), await new_analyst()) as web:
        for path in ("/review", f"/review/{tid}"):
            page = await web.get(path)
            assert page.status_code == 200
            assert "<script>alert(1)</script>" not in page.text
            assert "<img src=x" not in page.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path
            assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page.text, path
            csp = page.headers["content-security-policy"]
            assert "default-src 'self'" in csp
            assert "script-src 'none'" in csp
        sign_in_page = await web.get("/review/sign-in")  # signed in: sent on to the queue
        assert "content-security-policy" in sign_in_page.headers


async def test_a_disabled_analyst_is_signed_out_at_once(api: httpx.AsyncClient) -> None:
    name = await new_analyst()
    async with signed_in(base(api), name) as web:
        assert (await web.get("/review")).status_code == 200
        assert await analysts.disable(name, "test")
        assert (await web.get("/review")).status_code == 303
    assert (await sign_in(base(api), name)).status_code == 401


async def test_the_queue_filters_by_decision_rule_and_terminal_in_priority_order(
    api: httpx.AsyncClient,
) -> None:
    one = await review_case(api, terminal_id="T-filter-one")
    two = await review_case(api, terminal_id="T-filter-one", amount=5000)
    async with signed_in(base(api), await new_analyst()) as web:
        page = (await web.get("/review", params={"terminal": "T-filter-one"})).text
        shown = re.findall(r'<a href="/review/([^"?]+)">', page)
        # the same score band and age: the larger amount comes first
        assert set(shown) == {one["transaction_id"], two["transaction_id"]}
        if two["score"] >= one["score"]:
            assert shown == [two["transaction_id"], one["transaction_id"]]
        assert "2 open" in page
        by_rule = (await web.get("/review", params={"rule": "review_large"})).text
        assert f">{one['transaction_id']}</a>" in by_rule
        assert ">no_such_rule<" not in by_rule
        none = (await web.get("/review", params={"rule": "no_such_rule"})).text
        assert "No open cases match these filters" in none
        blocked = (await web.get("/review", params={"decision": "block"})).text
        assert f">{one['transaction_id']}</a>" not in blocked


async def test_a_session_ends_when_it_expires(api: httpx.AsyncClient, database_url: str) -> None:
    name = await new_analyst()
    async with signed_in(base(api), name) as web:
        assert (await web.get("/review")).status_code == 200
        # time passes: FRAUDSVC_REVIEW_SESSION_MINUTES after sign-in
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(
                "UPDATE analyst_sessions SET expires_at = now() - interval '1 second' "
                "WHERE analyst = $1",
                name,
            )
        finally:
            await connection.close()
        expired = await web.get("/review")
        assert expired.status_code == 303
        assert expired.headers["location"] == "/review/sign-in"


async def test_a_poor_lime_fit_is_drawn_with_a_plain_warning(
    api: httpx.AsyncClient, database_url: str
) -> None:
    tid = (await review_case(api))["transaction_id"]
    weights = (
        '[{"feature": "amount", "value": 900.0, "condition": "amount = 900", "weight": 0.41, '
        '"step": null}, {"feature": "is_night", "value": 0.0, "condition": "is_night = 0", '
        '"weight": -0.2, "step": null}]'
    )
    connection = await asyncpg.connect(database_url)
    try:  # what the worker stores for a finished explanation (this service runs none)
        await connection.execute(
            "INSERT INTO explanations (transaction_id, status, reason, attempts, method, "
            "requested_at, weights, local_fit_r2, stability, target) "
            "VALUES ($1, 'done', 'requested', 1, 'lime', now(), $2::jsonb, 0.12, 0.6, "
            "'log_odds')",
            tid,
            weights,
        )
    finally:
        await connection.close()
    async with signed_in(base(api), await new_analyst()) as web:
        page = (await web.get(f"/review/{tid}")).text
    assert page.count('<svg class="chart"') == 2  # the contributions and LIME
    assert ">amount = 900<" in page
    assert "Local fit R² <strong>0.12</strong>" in page
    assert "Poor local fit" in page


async def test_the_queue_gauges_follow_cases_opened_and_closed(api: httpx.AsyncClient) -> None:
    """What the worker exports (fraudsvc_review_*): two cases opened, one closed as genuine."""
    from fraudsvc.db import cases

    before = await cases.review_stats()
    first = await review_case(api)
    await review_case(api)
    tid = first["transaction_id"]
    async with signed_in(base(api), await new_analyst()) as web:
        token = csrf_of((await web.get(f"/review/{tid}")).text)
        await web.post(f"/review/{tid}/claim", data={"csrf_token": token})
        done = await web.post(
            f"/review/{tid}/verdict", data={"csrf_token": token, "verdict": "genuine"}
        )
        assert done.status_code == 303
    after = await cases.review_stats()
    assert after.open_cases == before.open_cases + 1
    assert after.closed_last_hour["genuine"] == before.closed_last_hour["genuine"] + 1
    assert after.closed_last_hour["fraud"] == before.closed_last_hour["fraud"]
    closed = sum(after.closed_last_hour.values())
    assert after.confirmed_share_7d == pytest.approx(after.closed_last_hour["fraud"] / closed)
    assert after.oldest_open_seconds >= 0.0


async def test_the_demos_analyst_works_the_top_case_through_the_forms(
    api: httpx.AsyncClient,
) -> None:
    """fraudsvc.demo_review signs in, claims the top case, gives the truth as its verdict, and
    the label is read back through the API."""
    import polars as pl

    from fraudsvc import demo_review

    await review_case(api)
    name = await new_analyst("demo")
    async with signed_in(base(api), name) as web:
        top = re.search(r'<a href="/review/([^"?/]+)">', (await web.get("/review")).text)
    assert top is not None
    truth = pl.DataFrame({"transaction_id": [top.group(1)], "is_fraud": [1]})
    worked = await demo_review.work_top_case(base(api), API_KEY, name, PASSWORD, truth)
    assert worked is not None
    assert (worked.transaction_id, worked.verdict) == (top.group(1), "fraud")
    assert worked.label is not None
    assert (worked.label["is_fraud"], worked.label["source"]) == (True, "analyst")
    assert (
        "marked it fraud; the API now shows its label is_fraud=True source=analyst"
        in (demo_review.lines(worked, name)[0])
    )
