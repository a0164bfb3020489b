"""phone.usage_client at its edges: how each record field is read, which requests are repeated, and what the
errors say. The HTTP cases run against the fake Twilio process with the real SDK."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.response import Response

from devservices import fake_twilio as ft
from phone.usage_client import (
    AccountNotFound,
    CredentialsInvalid,
    RetryPolicy,
    UsageFetchError,
    UsageRecord,
    _error_from_response,
    _from_rest_exception,
    account_currency,
    check_credentials,
    create_subaccount,
    fetch_daily_usage,
    parse_usage_record,
    set_account_status,
)

SID = "AC" + "d" * 32
DAY = date(2026, 11, 20)
MASTER = "AC" + "e" * 32
MASTER_TOKEN = "gaps-master-token-4a1b"
SUB = "AC" + "f" * 32
SUB_TOKEN = "gaps-sub-token-9c2d"


def raw(**fields: object) -> dict[str, object]:
    record: dict[str, object] = {"category": "calls-outbound", "start_date": "2026-11-20", "end_date": "2026-11-20",
                                 "count": "3", "usage": "7", "usage_unit": "minutes", "price": "0.12",
                                 "price_unit": "USD"}
    record.update(fields)
    return {k: v for k, v in record.items() if v is not ...}


# --- parse_usage_record --------------------------------------------------------------------------

def test_a_leaf_record_is_read_field_by_field() -> None:
    assert parse_usage_record(raw(), SID) == UsageRecord(
        account_sid=SID, category="calls-outbound", product="calls", day=DAY, count=Decimal(3), usage=Decimal(7),
        usage_unit="minutes", price=Decimal("0.12"), price_unit="usd")


def test_numbers_may_come_as_integers_or_padded_strings() -> None:
    record = parse_usage_record(raw(count=4, usage=" 9 ", price="1.50"), SID)
    assert record is not None
    assert (record.count, record.usage, record.price) == (Decimal(4), Decimal(9), Decimal("1.50"))


def test_a_missing_or_blank_count_is_zero_but_a_missing_usage_or_price_skips_the_record() -> None:
    assert parse_usage_record(raw(count=""), SID).count == Decimal(0)  # type: ignore[union-attr]
    assert parse_usage_record(raw(count=...), SID).count == Decimal(0)  # type: ignore[union-attr]
    assert parse_usage_record(raw(usage=""), SID) is None
    assert parse_usage_record(raw(price=...), SID) is None


@pytest.mark.parametrize("bad", ["-0.01", "Infinity", "NaN", "abc", 1.5, True])
def test_a_negative_infinite_unreadable_or_float_price_skips_the_record(bad: object) -> None:
    assert parse_usage_record(raw(price=bad), SID) is None


def test_a_zero_price_is_kept() -> None:
    assert parse_usage_record(raw(price="0"), SID).price == Decimal(0)  # type: ignore[union-attr]


def test_units_default_from_the_category_or_to_units_and_usd() -> None:
    record = parse_usage_record(raw(category="mms-inbound", usage_unit=..., price_unit=...), SID)
    assert record is not None and (record.usage_unit, record.price_unit, record.product) == (
        "messages", "usd", "mms")
    unknown = parse_usage_record(raw(category="brand-new-thing", usage_unit="", price_unit="EUR"), SID)
    assert unknown is not None and (unknown.usage_unit, unknown.price_unit, unknown.product) == (
        "units", "eur", "other")


def test_a_record_spanning_more_than_one_day_is_skipped_one_without_end_date_kept() -> None:
    assert parse_usage_record(raw(end_date="2026-11-21"), SID) is None
    assert parse_usage_record(raw(end_date=...), SID).day == DAY  # type: ignore[union-attr]
    assert parse_usage_record(raw(end_date=""), SID).day == DAY  # type: ignore[union-attr]


def test_parents_and_shapeless_records_are_not_billed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="phone.usage_client")
    assert parse_usage_record(raw(category="calls"), SID) is None
    assert parse_usage_record(raw(category="mms-inbound-longcode"), SID) is None
    assert not caplog.records  # a roll-up is expected, not a warning
    assert parse_usage_record(["not", "a", "dict"], SID) is None
    assert parse_usage_record(raw(category=7), SID) is None
    assert parse_usage_record(raw(category=...), SID) is None
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f"Twilio usage of {SID}: skipped a record that is not an object"),
        (logging.WARNING, f"Twilio usage of {SID}: skipped a record without a category"),
        (logging.WARNING, f"Twilio usage of {SID}: skipped a record without a category"),
    ]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("price", "abc", "price 'abc' is not a number"),
    ("usage", "Infinity", "usage 'Infinity' is not finite"),
    ("usage", ..., "usage is NoneType"),
    ("count", 1.5, "count is float"),
    ("count", "-2", "count '-2' is negative"),
    ("end_date", "2026-11-21", "start_date 2026-11-20 != end_date 2026-11-21"),
])
def test_a_skipped_record_warning_says_which_field_is_wrong_and_why(
        caplog: pytest.LogCaptureFixture, field: str, value: object, reason: str) -> None:
    caplog.set_level(logging.WARNING, logger="phone.usage_client")
    assert parse_usage_record(raw(**{field: value}), SID) is None
    [record] = caplog.records
    skipped = f"Twilio usage of {SID}: skipped malformed calls-outbound record on '2026-11-20'"
    assert record.getMessage() == f"{skipped}: {reason}"


def test_twilio_usage_unit_is_kept_over_ours() -> None:
    assert parse_usage_record(raw(usage_unit="seconds"), SID).usage_unit == "seconds"  # type: ignore[union-attr]


def test_a_malformed_record_warning_names_the_account_category_and_day(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="phone.usage_client")
    assert parse_usage_record(raw(price="-1"), SID) is None
    [record] = caplog.records
    message = record.getMessage()
    assert SID in message and "calls-outbound" in message and "2026-11-20" in message and "negative" in message


# --- RetryPolicy -----------------------------------------------------------------------------------

def test_retry_after_as_an_http_date_is_honoured_and_one_in_the_past_means_now() -> None:
    policy = RetryPolicy(backoff=1, max_backoff=5, max_retry_after=60)
    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8 <= policy.delay(1, in_ten) <= 10
    naive = (datetime.now(UTC) + timedelta(seconds=20)).strftime("%a, %d %b %Y %H:%M:%S")
    assert 18 <= policy.delay(1, naive) <= 20
    past = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    assert policy.delay(1, past) == 0
    assert policy.delay(2, "") == 2  # no header: the backoff
    assert policy.delay(1, "-3") == 0


# --- HTTP: which requests are repeated ----------------------------------------------------------

@pytest.fixture
def accounts(fake_twilio: str) -> str:
    ft.create_account(fake_twilio, MASTER, MASTER_TOKEN, friendly_name="Gaps master")
    ft.create_account(fake_twilio, SUB, SUB_TOKEN, parent_sid=MASTER, friendly_name="Gaps sub")
    ft.set_usage(fake_twilio, SUB, [{"category": "calls-outbound", "date": DAY, "count": 2, "usage": 5,
                                     "price": "0.10"}])
    return fake_twilio


def fetch(base_url: str, **kwargs: object) -> list[UsageRecord]:
    options: dict[str, object] = {"account_sid": SUB, "auth_sid": MASTER, "auth_token": MASTER_TOKEN, "start": DAY,
                                  "end": DAY, "base_url": base_url}
    options.update(kwargs)
    return list(fetch_daily_usage(**options))  # type: ignore[arg-type]


def daily_requests(base_url: str) -> list[dict[str, object]]:
    return [r for r in ft.request_log(base_url, SUB) if str(r["path"]).endswith("/Daily.json")]


def test_the_last_attempt_error_carries_twilio_status_and_says_how_many_attempts(accounts: str) -> None:
    retry = RetryPolicy(max_attempts=3, backoff=0.001)
    ft.inject_fault(accounts, SUB, "status", status=502, count=10)
    with pytest.raises(UsageFetchError) as info:
        fetch(accounts, retry=retry)
    assert type(info.value) is UsageFetchError and info.value.status == 502
    assert len(daily_requests(accounts)) == 3
    assert f"usage of {SUB}: Twilio answered 502" in str(info.value)


def test_a_single_attempt_policy_never_repeats(accounts: str) -> None:
    ft.inject_fault(accounts, SUB, "status", status=503, count=1)
    with pytest.raises(UsageFetchError):
        fetch(accounts, retry=RetryPolicy(max_attempts=1, backoff=0.001))
    assert len(daily_requests(accounts)) == 1


def test_a_4xx_other_than_429_is_not_retried(accounts: str) -> None:
    ft.inject_fault(accounts, SUB, "status", status=400, count=1)
    with pytest.raises(UsageFetchError) as info:
        fetch(accounts, retry=RetryPolicy(max_attempts=4, backoff=0.001))
    assert info.value.status == 400 and len(daily_requests(accounts)) == 1


def test_a_credentials_error_says_who_was_refused_and_twilio_code(accounts: str) -> None:
    with pytest.raises(CredentialsInvalid) as info:
        fetch(accounts, auth_token="wrong-token", retry=RetryPolicy(max_attempts=1))
    assert info.value.code == 20003
    assert str(info.value).startswith(f"usage of {SUB}: Twilio answered 401 (code 20003): ")


def test_a_timeout_on_a_post_that_may_have_reached_twilio_is_not_repeated(accounts: str) -> None:
    ft.inject_fault(accounts, MASTER, "sleep", seconds=0.6, count=1)
    with pytest.raises(UsageFetchError, match="after 1 attempt"):
        create_subaccount(friendly_name="slow", auth_sid=MASTER, auth_token=MASTER_TOKEN, base_url=accounts,
                          timeout=0.2, retry=RetryPolicy(max_attempts=4, backoff=0.001))
    assert len([r for r in ft.request_log(accounts) if str(r["path"]).endswith("/Accounts.json")]) == 1


def account_posts(base_url: str) -> list[dict[str, object]]:
    return [r for r in ft.request_log(base_url, SUB) if r["method"] == "POST"]


def test_a_status_change_is_repeated_after_a_read_timeout(accounts: str) -> None:
    ft.inject_fault(accounts, SUB, "sleep", seconds=0.6, count=1)
    info = set_account_status(account_sid=SUB, status="suspended", auth_sid=MASTER, auth_token=MASTER_TOKEN,
                              base_url=accounts, timeout=0.3, retry=RetryPolicy(max_attempts=3, backoff=0.001))
    assert info.status == "suspended" and ft.account_status(accounts, SUB) == "suspended"
    assert len(account_posts(accounts)) == 2  # the first one timed out


def test_a_status_change_follows_the_given_retry_policy(accounts: str) -> None:
    ft.inject_fault(accounts, SUB, "status", status=503, count=1)
    with pytest.raises(UsageFetchError) as info:
        set_account_status(account_sid=SUB, status="suspended", auth_sid=MASTER, auth_token=MASTER_TOKEN,
                           base_url=accounts, retry=RetryPolicy(max_attempts=1))
    assert info.value.status == 503 and len(account_posts(accounts)) == 1
    assert ft.account_status(accounts, SUB) == "active"


def test_a_status_change_refused_by_twilio_names_the_account(accounts: str) -> None:
    other = "AC" + "8" * 32
    with pytest.raises(AccountNotFound) as info:
        set_account_status(account_sid=other, status="suspended", auth_sid=MASTER, auth_token=MASTER_TOKEN,
                           base_url=accounts, retry=RetryPolicy(max_attempts=1))
    assert str(info.value).startswith(f"account {other}: Twilio answered 404") and info.value.code


def test_an_unknown_status_is_refused_before_any_request(accounts: str) -> None:
    with pytest.raises(ValueError, match="^status must be 'active' or 'suspended'$"):
        set_account_status(account_sid=SUB, status="closed", auth_sid=MASTER,  # type: ignore[arg-type]
                           auth_token=MASTER_TOKEN, base_url=accounts)
    assert ft.request_log(accounts, SUB) == []


def test_account_errors_name_the_account(accounts: str) -> None:
    with pytest.raises(CredentialsInvalid) as info:
        check_credentials(account_sid=SUB, auth_sid=MASTER, auth_token="nope", base_url=accounts)
    assert str(info.value).startswith(f"account {SUB}: Twilio answered 401 (code 20003): ")
    assert info.value.code == 20003 and not str(info.value).endswith(": ")
    other = "AC" + "9" * 32
    with pytest.raises(AccountNotFound) as missing:
        check_credentials(account_sid=other, auth_sid=MASTER, auth_token=MASTER_TOKEN, base_url=accounts)
    assert missing.value.status == 404 and missing.value.code
    assert str(missing.value).startswith(f"account {other}: Twilio answered 404")


def test_the_account_currency_is_lowercase(accounts: str) -> None:
    assert account_currency(account_sid=SUB, auth_sid=MASTER, auth_token=MASTER_TOKEN, base_url=accounts) == "usd"
    # A base address written with a trailing slash works the same.
    assert account_currency(account_sid=SUB, auth_sid=MASTER, auth_token=MASTER_TOKEN,
                            base_url=accounts + "/") == "usd"


def test_a_new_subaccount_belongs_to_the_master_that_created_it(accounts: str) -> None:
    created = create_subaccount(friendly_name="Client 7", auth_sid=MASTER, auth_token=MASTER_TOKEN,
                                base_url=accounts)
    assert created.sid.startswith("AC") and created.sid not in (MASTER, SUB)
    assert (created.friendly_name, created.status, created.owner_account_sid) == ("Client 7", "active", MASTER)
    assert created.auth_token


def test_page_size_and_day_order_are_checked_before_any_request(accounts: str) -> None:
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="^page_size must be between 1 and 1000$"):
            fetch(accounts, page_size=bad)
    with pytest.raises(ValueError, match="^start is after end$"):
        fetch(accounts, start=DAY, end=DAY - timedelta(days=1))
    assert len(fetch(accounts, page_size=1)) == 1 and len(fetch(accounts, page_size=1000)) == 1


def test_include_subaccounts_is_always_sent(accounts: str) -> None:
    fetch(accounts)
    fetch(accounts, include_subaccounts=True)
    sent = [r.get("query", {}) for r in daily_requests(accounts)]
    assert [q.get("IncludeSubaccounts") for q in sent] == ["false", "true"]  # type: ignore[union-attr]


# --- What an error says: Twilio's status, code and message, never more ---------------------------

def test_an_error_page_that_is_not_json_gives_the_status_alone() -> None:
    error = _error_from_response(Response(502, "<html>Bad gateway</html>"), "usage of X")
    assert type(error) is UsageFetchError and str(error) == "usage of X: Twilio answered 502"
    assert error.status == 502 and error.code is None


def test_twilio_message_is_kept_up_to_200_characters_and_a_missing_one_adds_nothing() -> None:
    long = _error_from_response(Response(400, '{"code": 21211, "message": "' + "m" * 300 + '"}'), "x")
    assert str(long) == "x: Twilio answered 400 (code 21211): " + "m" * 200 and long.code == 21211
    bare = _error_from_response(Response(500, '{"code": 20500}'), "x")
    assert str(bare) == "x: Twilio answered 500 (code 20500)"
    no_code = _error_from_response(Response(404, '{"message": "gone"}'), "x")
    assert type(no_code) is AccountNotFound and str(no_code) == "x: Twilio answered 404: gone"


def test_sdk_exceptions_become_ours_with_status_code_and_message() -> None:
    rest = _from_rest_exception(TwilioRestException(401, "/x", msg="Authenticate", code=20003), "account A")
    assert type(rest) is CredentialsInvalid and (rest.status, rest.code) == (401, 20003)
    assert str(rest) == "account A: Twilio answered 401 (code 20003): Authenticate"
    problem = _from_rest_exception(
        TwilioServiceException(type_uri="about:blank", title="Not here", status=404, code=20404), "account B")
    assert type(problem) is AccountNotFound and (problem.status, problem.code) == (404, 20404)
    assert str(problem) == "account B: Twilio answered 404 (code 20404): Not here"
    other = _from_rest_exception(TwilioException("boom, with details we do not show"), "account C")
    assert type(other) is UsageFetchError and str(other) == "account C: TwilioException"


def accounts_posts(base_url: str) -> list[dict[str, object]]:
    return [r for r in ft.request_log(base_url) if str(r["path"]).endswith("/Accounts.json")]


def test_a_429_on_creating_a_subaccount_is_retried_within_the_given_policy(accounts: str) -> None:
    ft.inject_fault(accounts, MASTER, "status", status=429, retry_after=0, count=1)
    with pytest.raises(UsageFetchError) as info:
        create_subaccount(friendly_name="once", auth_sid=MASTER, auth_token=MASTER_TOKEN, base_url=accounts,
                          retry=RetryPolicy(max_attempts=1))
    assert info.value.status == 429 and len(accounts_posts(accounts)) == 1
    ft.inject_fault(accounts, MASTER, "status", status=429, retry_after=0, count=1)
    created = create_subaccount(friendly_name="twice", auth_sid=MASTER, auth_token=MASTER_TOKEN, base_url=accounts,
                                retry=RetryPolicy(max_attempts=2, backoff=0.001))
    assert created.friendly_name == "twice" and len(accounts_posts(accounts)) == 3  # 429 is never processed


def test_a_refused_subaccount_creation_names_the_master(accounts: str) -> None:
    with pytest.raises(CredentialsInvalid) as info:
        create_subaccount(friendly_name="x", auth_sid=MASTER, auth_token="wrong", base_url=accounts)
    assert str(info.value).startswith(f"new subaccount of {MASTER}: Twilio answered 401 (code 20003)")
    with pytest.raises(UsageFetchError) as nested:
        create_subaccount(friendly_name="x", auth_sid=SUB, auth_token=SUB_TOKEN, base_url=accounts)
    assert nested.value.status == 403 and str(nested.value).startswith(f"new subaccount of {SUB}: ")


def read_account(name: str, base_url: str, **kwargs: object) -> object:
    reader = {"check_credentials": check_credentials, "account_currency": account_currency}[name]
    return reader(account_sid=SUB, auth_sid=MASTER, auth_token=MASTER_TOKEN, base_url=base_url,  # type: ignore[operator]
                  **kwargs)


@pytest.mark.parametrize("name", ["check_credentials", "account_currency"])
def test_account_reads_give_up_after_the_given_timeout_and_follow_the_given_policy(accounts: str, name: str) -> None:
    ft.inject_fault(accounts, SUB, "sleep", seconds=0.6, count=1)
    read_account(name, accounts, timeout=0.3, retry=RetryPolicy(max_attempts=2, backoff=0.001))
    assert len(ft.request_log(accounts, SUB)) == 2  # the slow answer was not waited for
    ft.clear_request_log(accounts)
    ft.inject_fault(accounts, SUB, "status", status=503, count=1)
    with pytest.raises(UsageFetchError) as info:
        read_account(name, accounts, retry=RetryPolicy(max_attempts=1))
    assert info.value.status == 503 and len(ft.request_log(accounts, SUB)) == 1


def test_a_refused_balance_read_names_the_account(accounts: str) -> None:
    with pytest.raises(CredentialsInvalid) as info:
        account_currency(account_sid=SUB, auth_sid=MASTER, auth_token="wrong", base_url=accounts)
    assert str(info.value).startswith(f"balance of {SUB}: Twilio answered 401 (code 20003)")


class _TwilioWithBlanks(BaseHTTPRequestHandler):
    """Twilio answers the fake never gives: a balance without a currency, an account without a name or an
    owner, a usage page that is not JSON (a proxy's maintenance page)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?")[0].endswith("/Daily.json"):
            self._answer(b"<html>maintenance</html>")
            return
        if self.path.split("?")[0].endswith("/Balance.json"):
            answer: dict[str, object] = {"account_sid": SUB, "balance": "1.00", "currency": None}
        else:
            answer = {"sid": SUB, "friendly_name": None, "status": "active", "owner_account_sid": None}
        self._answer(json.dumps(answer).encode())

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def twilio_with_blanks() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TwilioWithBlanks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_balance_without_a_currency_gives_no_currency(twilio_with_blanks: str) -> None:
    assert account_currency(account_sid=SUB, auth_sid=MASTER, auth_token=MASTER_TOKEN,
                            base_url=twilio_with_blanks) == ""


def test_an_account_without_a_name_or_owner_is_its_own_owner_with_no_name(twilio_with_blanks: str) -> None:
    info = check_credentials(account_sid=SUB, auth_sid=MASTER, auth_token=MASTER_TOKEN, base_url=twilio_with_blanks)
    assert (info.sid, info.friendly_name, info.status, info.owner_account_sid) == (SUB, "", "active", SUB)


def test_a_usage_page_that_is_not_json_is_an_unreadable_page(twilio_with_blanks: str) -> None:
    with pytest.raises(UsageFetchError) as info:
        fetch(twilio_with_blanks)
    assert str(info.value) == f"usage of {SUB}: unreadable page (JSONDecodeError)"


def test_a_failure_on_a_later_page_names_the_account(accounts: str) -> None:
    ft.set_usage(accounts, SUB, [{"category": c, "date": DAY, "count": 1, "usage": 1, "price": "0.01"}
                                 for c in ("calls-outbound", "sms-outbound-longcode", "mms-inbound")])
    records = fetch_daily_usage(account_sid=SUB, auth_sid=MASTER, auth_token=MASTER_TOKEN, start=DAY, end=DAY,
                                base_url=accounts, page_size=1, retry=RetryPolicy(max_attempts=1))
    next(records)
    ft.inject_fault(accounts, SUB, "status", status=503, count=10)
    with pytest.raises(UsageFetchError) as info:
        list(records)
    assert str(info.value).startswith(f"usage of {SUB}: Twilio answered 503")


def test_a_timeout_error_names_the_path_without_the_query(accounts: str) -> None:
    ft.inject_fault(accounts, SUB, "sleep", seconds=0.6, count=2)
    with pytest.raises(UsageFetchError) as info:
        fetch(accounts, timeout=0.2, retry=RetryPolicy(max_attempts=2, backoff=0.001))
    path = f"{accounts}/2010-04-01/Accounts/{SUB}/Usage/Records/Daily.json"
    assert str(info.value) == f"GET {path} failed after 2 attempt(s): ReadTimeout"


def test_a_timeout_on_a_later_page_names_its_path_without_the_query(accounts: str) -> None:
    ft.set_usage(accounts, SUB, [{"category": c, "date": DAY, "count": 1, "usage": 1, "price": "0.01"}
                                 for c in ("calls-outbound", "sms-outbound-longcode", "mms-inbound")])
    records = fetch_daily_usage(account_sid=SUB, auth_sid=MASTER, auth_token=MASTER_TOKEN, start=DAY, end=DAY,
                                base_url=accounts, page_size=1, timeout=0.2,
                                retry=RetryPolicy(max_attempts=2, backoff=0.001))
    next(records)
    ft.inject_fault(accounts, SUB, "sleep", seconds=0.6, count=2)
    with pytest.raises(UsageFetchError) as info:
        list(records)
    path = f"{accounts}/2010-04-01/Accounts/{SUB}/Usage/Records/Daily.json"
    assert str(info.value) == f"GET {path} failed after 2 attempt(s): ReadTimeout"


def test_each_retry_is_logged_with_its_path_reason_attempt_and_delay(
        accounts: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="phone.usage_client")
    ft.inject_fault(accounts, SUB, "sleep", seconds=0.6, count=1)
    ft.inject_fault(accounts, SUB, "status", status=503, count=1)
    fetch(accounts, timeout=0.3, retry=RetryPolicy(max_attempts=3, backoff=0.25))
    path = f"{accounts}/2010-04-01/Accounts/{SUB}/Usage/Records/Daily.json"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"Twilio GET {path}: ReadTimeout, retry 1 in 0.25s",
        f"Twilio GET {path} answered 503, retry 2 in 0.50s",
    ]
