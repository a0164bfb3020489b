"""phone.usage_client against the real fake Twilio process, over HTTP, with the real twilio SDK."""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest

from devservices import fake_twilio as ft
from phone.categories import PARENTS, Product, billable_category, category_product, is_billable, is_parent
from phone.usage_client import (
    AccountNotFound,
    CredentialsInvalid,
    RetryPolicy,
    UsageFetchError,
    UsageRecord,
    check_credentials,
    create_subaccount,
    fetch_daily_usage,
    set_account_status,
)

MASTER = "AC" + "a" * 32
MASTER_TOKEN = "master-token-7f3c9d"
OTHER_MASTER = "AC" + "b" * 32
OTHER_TOKEN = "other-token-55e1a0"
SUB = "AC" + "c" * 32
SUB_TOKEN = "sub-token-0b9e44"
DAY = date(2026, 11, 20)
LEAVES = ["sms-outbound-longcode", "calls-outbound", "mms-inbound"]


@pytest.fixture
def accounts(fake_twilio: str) -> str:
    ft.create_account(fake_twilio, MASTER, MASTER_TOKEN, friendly_name="Platform master")
    ft.create_account(fake_twilio, OTHER_MASTER, OTHER_TOKEN)
    ft.create_account(fake_twilio, SUB, SUB_TOKEN, parent_sid=MASTER, friendly_name="Acme LC Phone")
    # 5 days x 3 leaves = 15 billable records, plus 8 parents a day on the wire (55 records).
    ft.set_usage(fake_twilio, SUB, [
        {"category": cat, "date": DAY + timedelta(days=d), "count": 10 + d, "usage": 20 + d + i,
         "price": f"{d}.{i}5"}
        for d in range(5) for i, cat in enumerate(LEAVES)
    ])
    return fake_twilio


def fetch(base_url: str, *, account: str = SUB, auth: tuple[str, str] = (MASTER, MASTER_TOKEN),
          start: date = DAY, end: date = DAY + timedelta(days=4), retry: RetryPolicy | None = None,
          **kwargs: object) -> list[UsageRecord]:
    return list(fetch_daily_usage(account_sid=account, auth_sid=auth[0], auth_token=auth[1], start=start,
                                  end=end, base_url=base_url, retry=retry, **kwargs))  # type: ignore[arg-type]


def daily_requests(base_url: str, sid: str = SUB) -> list[dict[str, object]]:
    return [r for r in ft.request_log(base_url, sid) if str(r["path"]).endswith("/Daily.json")]


def test_pages_through_every_record_exactly_once_and_skips_parents(accounts: str) -> None:
    records = fetch(accounts, page_size=10)

    assert len(daily_requests(accounts)) == 6  # 55 records on the wire, 10 a page
    keys = [(r.day, r.category) for r in records]
    assert len(keys) == len(set(keys)) == 15
    assert set(keys) == {(DAY + timedelta(days=d), c) for d in range(5) for c in LEAVES}
    assert not any(is_parent(r.category) for r in records)
    by_key = {(r.day, r.category): r for r in records}
    calls = by_key[(DAY + timedelta(days=2), "calls-outbound")]
    assert calls == UsageRecord(account_sid=SUB, category="calls-outbound", product="calls",
                                day=DAY + timedelta(days=2), count=Decimal(12), usage=Decimal(23),
                                usage_unit="minutes", price=Decimal("2.15"), price_unit="usd")


def test_a_day_that_grows_between_pulls_shows_the_new_totals(accounts: str) -> None:
    before = {(r.day, r.category): r for r in fetch(accounts, start=DAY, end=DAY)}
    assert before[(DAY, "sms-outbound-longcode")].usage == Decimal(20)

    ft.set_usage(accounts, SUB, [{"category": "sms-outbound-longcode", "date": DAY, "count": 31,
                                  "usage": 31, "price": "0.2449"}])
    after = {(r.day, r.category): r for r in fetch(accounts, start=DAY, end=DAY)}

    assert after[(DAY, "sms-outbound-longcode")].usage == Decimal(31)
    assert after[(DAY, "sms-outbound-longcode")].price == Decimal("0.2449")
    assert after[(DAY, "calls-outbound")] == before[(DAY, "calls-outbound")]


def test_bad_credentials_raise_credentials_invalid_without_leaking_the_token(
        accounts: str, fast_retry: RetryPolicy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-secret-token-91d2"
    ft.inject_fault(accounts, SUB, "status", status=503, count=1)  # so retry warnings are logged too

    with pytest.raises(CredentialsInvalid) as info:
        fetch(accounts, auth=(MASTER, secret), retry=fast_retry)
    with pytest.raises(CredentialsInvalid) as info2:
        check_credentials(account_sid=SUB, auth_sid=MASTER, auth_token=secret, base_url=accounts)

    assert info.value.status == 401 and info.value.code == 20003
    assert caplog.records, "expected the retry to be logged"
    for exc in (info.value, info2.value):
        assert secret not in str(exc) and secret not in repr(exc)
        assert MASTER_TOKEN not in str(exc)
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert secret not in text and MASTER_TOKEN not in text


def test_the_token_never_appears_in_logs_of_a_successful_pull(
        accounts: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ft.inject_fault(accounts, SUB, "malformed", field="price")
    fetch(accounts)
    assert any("malformed" in r.getMessage() for r in caplog.records)
    assert all(MASTER_TOKEN not in r.getMessage() + repr(r.args) for r in caplog.records)


def test_429_is_retried_after_retry_after(accounts: str, fast_retry: RetryPolicy) -> None:
    ft.inject_fault(accounts, SUB, "status", status=429, retry_after=0.1, count=1)
    started = time.monotonic()
    records = fetch(accounts, retry=fast_retry)
    assert len(records) == 15
    assert time.monotonic() - started >= 0.1  # honoured Retry-After: 0.1 over the 10 ms backoff
    assert len(daily_requests(accounts)) == 2


def test_a_long_retry_after_is_capped(accounts: str, fast_retry: RetryPolicy) -> None:
    ft.inject_fault(accounts, SUB, "status", status=429, retry_after=3600, count=1)
    started = time.monotonic()
    assert len(fetch(accounts, retry=fast_retry)) == 15
    assert time.monotonic() - started < 2


def test_two_500s_then_success(accounts: str, fast_retry: RetryPolicy) -> None:
    ft.inject_fault(accounts, SUB, "status", status=500, count=2)
    assert len(fetch(accounts, retry=fast_retry)) == 15
    assert len(daily_requests(accounts)) == 3


def test_a_failure_on_a_later_page_is_retried_too(accounts: str, fast_retry: RetryPolicy) -> None:
    records = fetch(accounts, page_size=10, retry=fast_retry)
    ft.clear_request_log(accounts)
    pages = iter(fetch_daily_usage(account_sid=SUB, auth_sid=MASTER, auth_token=MASTER_TOKEN, start=DAY,
                                   end=DAY + timedelta(days=4), base_url=accounts, page_size=10,
                                   retry=fast_retry))
    first = next(pages)  # first page fetched; the next request will be page 2
    ft.inject_fault(accounts, SUB, "status", status=503, count=2)
    assert [first, *pages] == records


def test_a_timeout_is_retried(accounts: str, fast_retry: RetryPolicy) -> None:
    ft.inject_fault(accounts, SUB, "sleep", seconds=1.0, count=1)
    started = time.monotonic()
    assert len(fetch(accounts, retry=fast_retry, timeout=0.3)) == 15
    assert time.monotonic() - started < 1.0
    assert len(daily_requests(accounts)) == 2


def test_persistent_5xx_raises_after_bounded_attempts(accounts: str, fast_retry: RetryPolicy) -> None:
    ft.inject_fault(accounts, SUB, "status", status=503, count=100)
    with pytest.raises(UsageFetchError) as info:
        fetch(accounts, retry=fast_retry)
    assert info.value.status == 503
    assert len(daily_requests(accounts)) == fast_retry.max_attempts


def test_persistent_timeouts_raise_usage_fetch_error(accounts: str) -> None:
    retry = RetryPolicy(max_attempts=2, backoff=0.01)
    ft.inject_fault(accounts, SUB, "sleep", seconds=0.6, count=2)
    with pytest.raises(UsageFetchError, match="after 2 attempt"):
        fetch(accounts, retry=retry, timeout=0.2)


@pytest.mark.parametrize("field", ["price", "usage", "count", "date"])
def test_a_malformed_record_is_skipped_and_the_rest_of_the_page_kept(
        accounts: str, field: str, caplog: pytest.LogCaptureFixture) -> None:
    clean = fetch(accounts)
    ft.inject_fault(accounts, SUB, "malformed", field=field)
    caplog.set_level(logging.WARNING, logger="phone.usage_client")

    assert fetch(accounts) == clean
    assert any(r.name == "phone.usage_client" and "skipped" in r.getMessage() for r in caplog.records)


def test_a_category_we_do_not_know_is_kept_as_other(accounts: str) -> None:
    clean = fetch(accounts)
    ft.inject_fault(accounts, SUB, "malformed", field="category")
    records = fetch(accounts)
    [unknown] = [r for r in records if r.category == "totally-unknown-category"]
    assert unknown.product == Product.OTHER.value and len(records) == len(clean) + 1


def test_totals_are_collected_per_day(accounts: str) -> None:
    totals: dict[date, Decimal] = {}
    records = fetch(accounts, totals=totals)
    assert set(totals) == {DAY + timedelta(days=d) for d in range(5)}
    assert totals[DAY] == sum(r.price for r in records if r.day == DAY)


def test_master_reads_its_subaccount_another_master_cannot(accounts: str, fast_retry: RetryPolicy) -> None:
    assert len(fetch(accounts, auth=(MASTER, MASTER_TOKEN))) == 15
    assert len(fetch(accounts, auth=(SUB, SUB_TOKEN))) == 15  # its own credentials work too
    with pytest.raises(AccountNotFound) as info:
        fetch(accounts, auth=(OTHER_MASTER, OTHER_TOKEN), retry=fast_retry)
    assert info.value.status == 404
    with pytest.raises(AccountNotFound):
        fetch(accounts, account=MASTER, auth=(SUB, SUB_TOKEN), retry=fast_retry)
    with pytest.raises(AccountNotFound):
        check_credentials(account_sid=SUB, auth_sid=OTHER_MASTER, auth_token=OTHER_TOKEN, base_url=accounts)


def test_check_credentials(accounts: str) -> None:
    info = check_credentials(account_sid=SUB, auth_sid=MASTER, auth_token=MASTER_TOKEN, base_url=accounts)
    assert (info.sid, info.status, info.owner_account_sid, info.friendly_name) == (
        SUB, "active", MASTER, "Acme LC Phone")
    assert len(ft.request_log(accounts, SUB)) == 1


def test_suspend_and_resume(accounts: str, fast_retry: RetryPolicy) -> None:
    kwargs = {"account_sid": SUB, "auth_sid": MASTER, "auth_token": MASTER_TOKEN, "base_url": accounts,
              "retry": fast_retry}
    assert set_account_status(status="suspended", **kwargs).status == "suspended"  # type: ignore[arg-type]
    assert ft.account_status(accounts, SUB) == "suspended"
    ft.inject_fault(accounts, SUB, "status", status=503, count=1)  # idempotent: retried
    assert set_account_status(status="active", **kwargs).status == "active"  # type: ignore[arg-type]
    assert ft.account_status(accounts, SUB) == "active"
    with pytest.raises(AccountNotFound):
        set_account_status(account_sid=SUB, status="suspended", auth_sid=OTHER_MASTER, auth_token=OTHER_TOKEN,
                           base_url=accounts)
    assert ft.account_status(accounts, SUB) == "active"


def test_create_subaccount_returns_working_credentials(accounts: str) -> None:
    created = create_subaccount(friendly_name="Client 42", auth_sid=MASTER, auth_token=MASTER_TOKEN,
                                base_url=accounts)
    assert created.owner_account_sid == MASTER and created.friendly_name == "Client 42"
    assert created.auth_token not in repr(created)
    own = check_credentials(account_sid=created.sid, auth_sid=created.sid, auth_token=created.auth_token,
                            base_url=accounts)
    assert own.status == "active"
    assert fetch(accounts, account=created.sid, auth=(created.sid, created.auth_token)) == []


def test_create_subaccount_is_not_retried_on_5xx(accounts: str, fast_retry: RetryPolicy) -> None:
    ft.inject_fault(accounts, MASTER, "status", status=500, count=1)
    with pytest.raises(UsageFetchError):
        create_subaccount(friendly_name="x", auth_sid=MASTER, auth_token=MASTER_TOKEN, base_url=accounts,
                          retry=fast_retry)
    assert len([r for r in ft.request_log(accounts) if r["path"].endswith("/Accounts.json")]) == 1


def test_bulk_accounts_yield_only_leaves(fake_twilio: str) -> None:
    sid = ft.bulk_generate(fake_twilio, accounts=1, start_date=DAY, days=3, auth_token="bulk")["sids"][0]
    records = list(fetch_daily_usage(account_sid=sid, auth_sid=sid, auth_token="bulk", start=DAY,
                                     end=DAY + timedelta(days=2), base_url=fake_twilio))
    assert len(records) == 3 * len(ft.LEAVES)
    assert {r.product for r in records} == {p.value for p in Product}


def test_categories() -> None:
    assert is_billable("sms-outbound-longcode") and is_billable("calls-inbound-tollfree")
    assert billable_category("calls-outbound").unit == "minutes"  # type: ignore[union-attr]
    assert billable_category("phonenumbers-local").product is Product.PHONE_NUMBERS  # type: ignore[union-attr]
    for parent in ["sms", "mms", "calls", "phonenumbers", "totalprice", "sms-inbound", "calls-inbound"]:
        assert parent in PARENTS and not is_billable(parent)
    assert not is_billable("some-new-category")
    assert category_product("some-new-category") is Product.OTHER  # billed, never dropped
    assert category_product("mms-inbound-longcode") is None  # rolls up into mms-inbound, which is billed
    assert category_product("sms") is None and category_product("mms-inbound") is Product.MMS
    # Every leaf the fake serves is billable, and every parent it serves is listed as never billed.
    assert all(is_billable(c) for c in ft.LEAVES)
    assert set(ft.PARENTS) <= PARENTS


def test_retry_policy_delays() -> None:
    policy = RetryPolicy(backoff=1, max_backoff=5, max_retry_after=30)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert policy.delay(1, "7") == 7
    assert policy.delay(1, "600") == 30
    assert policy.delay(3, "garbage") == 4
