"""The fake Twilio, as a real process over real HTTP, driven by the official twilio SDK."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from devservices import fake_twilio as ft
from devservices.processes import ServiceProcess

MASTER, MASTER_TOKEN = "AC" + "1" * 32, "master-secret-1"
OTHER, OTHER_TOKEN = "AC" + "2" * 32, "other-secret-2"
SUB, SUB_TOKEN = "AC" + "3" * 32, "sub-secret-3"
DAY = date(2026, 11, 10)
RECORD_FIELDS = {"account_sid", "api_version", "category", "count", "count_unit", "usage", "usage_unit",
                 "price", "price_unit", "start_date", "end_date", "as_of", "description", "uri",
                 "subresource_uris"}
ENVELOPE = {"usage_records", "first_page_uri", "next_page_uri", "previous_page_uri", "page", "page_size",
            "start", "end", "uri"}


@pytest.fixture(scope="module")
def twilio_fake_process() -> Iterator[ServiceProcess]:
    process = ft.start_fake_twilio()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def fake(twilio_fake_process: ServiceProcess) -> str:
    url = twilio_fake_process.url
    ft.reset(url)
    ft.create_account(url, MASTER, MASTER_TOKEN, friendly_name="Master")
    ft.create_account(url, OTHER, OTHER_TOKEN)
    ft.create_account(url, SUB, SUB_TOKEN, parent_sid=MASTER, friendly_name="Sub")
    ft.set_usage(url, SUB, [
        {"category": "sms-outbound-longcode", "date": DAY, "count": 100, "usage": 100, "price": "0.79"},
        {"category": "sms-inbound-tollfree", "date": DAY, "count": 7, "usage": 7, "price": "0.0553"},
        {"category": "mms-outbound", "date": DAY, "count": 3, "usage": 3, "price": "0.06"},
        {"category": "calls-inbound-local", "date": DAY, "count": 4, "usage": 11, "price": "0.0935"},
        {"category": "calls-outbound", "date": DAY, "count": 2, "usage": 5, "price": "0.07"},
        {"category": "phonenumbers-local", "date": DAY, "count": 1, "usage": 1, "price": "1.15"},
        {"category": "sms-messages-carrierfees", "date": DAY, "count": 100, "usage": 100, "price": "0.30"},
        {"category": "calls-outbound", "date": DAY + timedelta(days=1), "count": 1, "usage": 2,
         "price": "0.028"},
    ])
    return url


def sdk(fake: str, sid: str = MASTER, token: str = MASTER_TOKEN) -> Client:
    client = Client(sid, token)
    client.api.base_url = fake
    return client


def get(fake: str, path: str, auth: tuple[str, str] | None = (MASTER, MASTER_TOKEN),
        method: str = "GET", form: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    data = urllib.parse.urlencode(form).encode() if form else None
    request = urllib.request.Request(fake + path, data=data, method=method)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def daily_path(sid: str = SUB, **query: str) -> str:
    q = {"StartDate": DAY.isoformat(), "EndDate": (DAY + timedelta(days=1)).isoformat(), **query}
    return f"/2010-04-01/Accounts/{sid}/Usage/Records/Daily.json?" + urllib.parse.urlencode(q)


def test_sdk_pages_through_every_record_exactly_once(fake: str) -> None:
    records = sdk(fake).api.v2010.accounts(SUB).usage.records.daily.list(
        start_date=DAY, end_date=DAY + timedelta(days=1), page_size=3)

    keys = Counter((r.start_date, r.category) for r in records)
    assert all(n == 1 for n in keys.values())
    # 8 parents + the leaves set on each of the 2 days
    assert len(keys) == 2 * len(ft.PARENTS) + 7 + 1
    daily = [r for r in ft.request_log(fake, SUB) if r["path"].endswith("Daily.json")]
    assert len(daily) == -(-len(keys) // 3)
    assert records[0].price_unit == "usd" and isinstance(records[0].count, str)


def test_envelope_and_record_shapes(fake: str) -> None:
    status, _, first = get(fake, daily_path(PageSize="5"))
    assert status == 200 and set(first) == ENVELOPE
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 5, 0, 4)
    assert first["previous_page_uri"] is None and first["next_page_uri"].startswith("/2010-04-01/Accounts/")
    record = first["usage_records"][0]
    assert set(record) == RECORD_FIELDS
    assert all(isinstance(record[f], str) for f in RECORD_FIELDS - {"subresource_uris"})
    assert record["start_date"] == record["end_date"] == DAY.isoformat()

    pages = [first]
    while pages[-1]["next_page_uri"]:
        status, _, page = get(fake, pages[-1]["next_page_uri"])
        assert status == 200
        pages.append(page)
    assert pages[-1]["next_page_uri"] is None and pages[-1]["previous_page_uri"] is not None
    assert [p["page"] for p in pages] == list(range(len(pages)))


def test_parents_roll_up_their_children(fake: str) -> None:
    _, _, body = get(fake, daily_path(PageSize="1000", EndDate=DAY.isoformat()))
    rows = {r["category"]: r for r in body["usage_records"]}
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    total = Decimal(0)
    for cat, row in rows.items():
        if cat in ft.LEAVES:
            values = [Decimal(row["count"]), Decimal(row["usage"]), Decimal(row["price"])]
            total += values[2]
            for parent in ft.LEAVES[cat].parents:
                sums[parent] = [a + b for a, b in zip(sums[parent], values, strict=True)]
    for parent in ft.PARENTS:
        if parent != "totalprice":
            assert [Decimal(rows[parent][k]) for k in ("count", "usage", "price")] == sums[parent]
    assert Decimal(rows["sms"]["count"]) == 107 and Decimal(rows["calls"]["usage"]) == 16
    assert Decimal(rows["totalprice"]["price"]) == total == Decimal("2.5188")
    calls = rows["calls-outbound"]
    assert calls["usage_unit"] == "minutes" and calls["count_unit"] == "calls"


def test_a_category_billed_as_a_leaf_also_rolls_up_its_finer_children(fake: str) -> None:
    ft.set_usage(fake, OTHER, [
        {"category": "mms-inbound-longcode", "date": DAY, "count": 10, "usage": 10, "price": "0.20"},
        {"category": "mms-inbound-tollfree", "date": DAY, "count": 5, "usage": 5, "price": "0.10"}])
    _, _, body = get(fake, daily_path(OTHER, EndDate=DAY.isoformat()), auth=(OTHER, OTHER_TOKEN))
    rows = {r["category"]: (r["usage"], r["price"]) for r in body["usage_records"]}
    assert rows["mms-inbound"] == rows["mms"] == ("15", "0.30")
    assert rows["mms-inbound-longcode"] == ("10", "0.20")
    assert rows["totalprice"][1] == "0.30"  # the children's price, once


def test_a_main_account_includes_its_subaccounts_unless_asked_not_to(fake: str) -> None:
    ft.set_usage(fake, MASTER, [{"category": "calls-outbound", "date": DAY, "count": 1, "usage": 1, "price": "0.01"}])

    def calls(**query: str) -> str:
        _, _, body = get(fake, daily_path(MASTER, EndDate=DAY.isoformat(), **query))
        return next(r["usage"] for r in body["usage_records"] if r["category"] == "calls-outbound")

    assert calls() == "6"  # its own 1 + its subaccount's 5 (Twilio's default)
    assert calls(IncludeSubaccounts="true") == "6"
    assert calls(IncludeSubaccounts="false") == "1"


def test_category_filter_default_page_size_and_limits(fake: str) -> None:
    _, _, body = get(fake, daily_path(Category="calls-outbound"))
    assert [r["category"] for r in body["usage_records"]] == ["calls-outbound"] * 2
    assert body["page_size"] == 50
    status, _, error = get(fake, daily_path(PageSize="1001"))
    assert status == 400 and error["status"] == 400
    assert set(error) == {"code", "message", "more_info", "status"}


def test_relative_dates(fake: str) -> None:
    today = datetime.now(UTC).date()
    ft.set_usage(fake, SUB, [{"category": "mms-inbound", "date": today, "count": 1, "usage": 1,
                              "price": "0.02"}])
    path = f"/2010-04-01/Accounts/{SUB}/Usage/Records/Daily.json?StartDate=-1days&Category=mms-inbound"
    _, _, body = get(fake, path)
    assert [r["start_date"] for r in body["usage_records"]] == [today.isoformat()]


def test_set_usage_replaces_a_day(fake: str) -> None:
    ft.set_usage(fake, SUB, [{"category": "sms-outbound-longcode", "date": DAY, "count": 150, "usage": 150,
                              "price": "1.185"}])
    _, _, body = get(fake, daily_path(Category="sms-outbound-longcode"))
    assert [(r["count"], r["price"]) for r in body["usage_records"]] == [("150", "1.185")]


def test_authentication(fake: str) -> None:
    status, _, body = get(fake, daily_path(), auth=(MASTER, "nope"))
    assert status == 401 and body == {"code": 20003, "message": "Authenticate",
                                      "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}
    assert get(fake, daily_path(), auth=None)[0] == 401
    assert get(fake, daily_path(), auth=(SUB, SUB_TOKEN))[0] == 200
    assert get(fake, daily_path(), auth=(MASTER, MASTER_TOKEN))[0] == 200
    status, _, body = get(fake, daily_path(), auth=(OTHER, OTHER_TOKEN))
    assert status == 404 and body["code"] == 20404
    status, _, body = get(fake, daily_path("AC" + "9" * 32))
    assert status == 404 and body["code"] == 20404 and body["more_info"].endswith("/20404")
    assert get(fake, daily_path(MASTER), auth=(SUB, SUB_TOKEN))[0] == 404  # a subaccount can't see its master


def test_accounts_fetch_update_create_with_the_sdk(fake: str) -> None:
    client = sdk(fake)
    sub = client.api.v2010.accounts(SUB).fetch()
    assert (sub.sid, sub.status, sub.owner_account_sid, sub.friendly_name, sub.type) == (
        SUB, "active", MASTER, "Sub", "Full")
    assert sub.auth_token is None
    assert client.api.v2010.accounts(SUB).update(status="suspended").status == "suspended"
    assert ft.account_status(fake, SUB) == "suspended"
    assert client.api.v2010.accounts(SUB).update(status="active").status == "active"
    with pytest.raises(TwilioRestException) as info:
        sdk(fake, OTHER, OTHER_TOKEN).api.v2010.accounts(SUB).update(status="suspended")
    assert info.value.status == 404
    assert ft.account_status(fake, SUB) == "active"

    created = client.api.v2010.accounts.create(friendly_name="Client 7")
    assert created.sid.startswith("AC") and len(created.sid) == 34 and created.auth_token
    assert created.owner_account_sid == MASTER and created.friendly_name == "Client 7"
    own = sdk(fake, created.sid, created.auth_token)
    assert own.api.v2010.accounts(created.sid).fetch().status == "active"


def test_status_faults(fake: str) -> None:
    ft.inject_fault(fake, SUB, "status", status=429, retry_after=2, count=2)
    ft.inject_fault(fake, SUB, "status", status=503)
    status, headers, body = get(fake, daily_path())
    assert status == 429 and headers["Retry-After"] == "2" and body["code"] == 20429
    assert get(fake, daily_path())[0] == 429
    assert get(fake, daily_path())[0] == 503
    assert get(fake, daily_path())[0] == 200
    ft.inject_fault(fake, SUB, "status", status=500, count=5)
    ft.clear_faults(fake, SUB)
    assert get(fake, daily_path())[0] == 200


def test_sleep_fault(fake: str) -> None:
    ft.inject_fault(fake, SUB, "sleep", seconds=0.4)
    started = time.monotonic()
    assert get(fake, daily_path())[0] == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    get(fake, daily_path())
    assert time.monotonic() - started < 0.4


@pytest.mark.parametrize(("field", "check"), [
    ("price", lambda r: r["price"] == "not-a-number"),
    ("usage", lambda r: r["usage"].startswith("-")),
    ("category", lambda r: r["category"] == "totally-unknown-category"),
    ("date", lambda r: r["start_date"] == "2025-13-45"),
])
def test_malformed_record_fault(fake: str, field: str, check: Any) -> None:
    def records() -> list[dict[str, Any]]:
        page = get(fake, daily_path())[2]["usage_records"]
        return [{k: v for k, v in r.items() if k != "as_of"} for r in page]

    clean = records()
    ft.inject_fault(fake, SUB, "malformed", field=field)
    dirty = records()
    extra = [r for r in dirty if r not in clean]
    assert len(dirty) == len(clean) + 1 and len(extra) == 1
    assert check(extra[0])
    assert records() == clean  # one page only


def test_request_log_and_reset(fake: str) -> None:
    get(fake, daily_path(), auth=(MASTER, MASTER_TOKEN))
    get(fake, daily_path(), auth=(MASTER, "bad"))
    log = ft.request_log(fake, SUB)
    assert [(r["method"], r["account"], r["auth_user"]) for r in log] == [("GET", SUB, MASTER)] * 2
    assert log[0]["path"].endswith("/Usage/Records/Daily.json")
    assert log[0]["query"]["StartDate"] == DAY.isoformat()
    assert MASTER_TOKEN not in json.dumps(log) and "bad" not in json.dumps(log)
    ft.reset(fake)
    assert ft.request_log(fake) == []
    assert get(fake, daily_path())[0] == 401  # accounts are gone too


def test_bulk_generation_is_deterministic_and_fast(fake: str) -> None:
    made = ft.bulk_generate(fake, accounts=50, start_date=DAY, days=6, seed=3, auth_token="bulk")
    again = ft.bulk_generate(fake, accounts=50, start_date=DAY, days=6, seed=3, auth_token="bulk")
    assert made == again and len(made["sids"]) == len(set(made["sids"])) == 50
    started = time.monotonic()
    seen = 0
    for sid in made["sids"]:
        records = sdk(fake, sid, "bulk").api.v2010.accounts(sid).usage.records.daily.list(
            start_date=DAY, end_date=DAY + timedelta(days=10), page_size=1000)
        seen += len(records)
    assert seen == 50 * made["records_per_account"] == 50 * 6 * (len(ft.LEAVES) + len(ft.PARENTS))
    assert time.monotonic() - started < 10


def test_demo_accounts_need_demo_mode(fake: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        ft.create_account(fake, "AC" + "d" * 32, "t", demo=True)
    assert info.value.code == 400


def test_demo_mode_generates_growing_usage() -> None:
    process = ft.start_fake_twilio(demo=True)
    try:
        url = process.url
        ft.create_account(url, MASTER, MASTER_TOKEN, demo=True)
        today = datetime.now(UTC).date()
        client = sdk(url)
        records = client.api.v2010.accounts(MASTER).usage.records.daily.list(
            start_date=today - timedelta(days=5), end_date=today)
        days = {r.start_date for r in records}
        assert days == {today - timedelta(days=n) for n in range(3)}
        total = {r.start_date: Decimal(r.price) for r in records if r.category == "totalprice"}
        assert total[today - timedelta(days=1)] > 0
        # A subaccount provisioned through the API under a demo master is a demo account too.
        created = client.api.v2010.accounts.create(friendly_name="LC Phone client")
        assert client.api.v2010.accounts(created.sid).usage.records.daily.list(
            start_date=today - timedelta(days=1), end_date=today - timedelta(days=1))
    finally:
        process.stop()
