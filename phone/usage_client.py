"""Pull daily usage from Twilio's Usage Records API (and manage subaccounts) with the official SDK.

Pure Python, no Django: the ``phone`` app's tasks call these functions with decrypted credentials.

* The SDK does not retry by itself (``TwilioHttpClient`` mounts no retrying adapter unless given
  ``max_retries``, and then only for https), so the one retry layer lives here, in an
  ``HttpClient`` subclass: every SDK request — first page, next pages, account calls — goes
  through it.
* Pages are read as raw JSON through the SDK's ``Page`` machinery (``next_page_uri`` resolved by
  the SDK against ``base_url``) rather than as ``DailyInstance`` objects: ``DailyInstance`` parses
  ``price`` eagerly and would raise in the middle of a page on one malformed record.
* The auth token is never logged nor put in an exception message: messages are built here from
  the account SID, the HTTP status and Twilio's error code/message only.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.rest.api.v2010.account.usage.record.daily import DailyPage

from phone.categories import TOTAL, billable_category, category_product

log = logging.getLogger(__name__)


# --- Errors --------------------------------------------------------------------------------------

class TwilioClientError(Exception):
    """Base class of everything this module raises."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class CredentialsInvalid(TwilioClientError):
    """Twilio answered 401: the SID / auth token pair is wrong (or the account is closed)."""


class UsageFetchError(TwilioClientError):
    """Any other failure: retries exhausted, unexpected status, unreadable page."""


class AccountNotFound(UsageFetchError):
    """404: the account does not exist or these credentials may not see it (not their subaccount)."""


# --- Data ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One billable leaf record: usage of ``category`` by ``account_sid`` on UTC day ``day``."""

    account_sid: str
    category: str
    product: str
    day: date
    count: Decimal  # number of events (calls, messages, numbers)
    usage: Decimal  # billed units (minutes for calls, messages, numbers)
    usage_unit: str
    price: Decimal  # what Twilio charges for it, in price_unit
    price_unit: str


@dataclass(frozen=True, slots=True)
class AccountInfo:
    sid: str
    friendly_name: str
    status: str  # active | suspended | closed
    owner_account_sid: str


@dataclass(frozen=True, slots=True)
class SubaccountCredentials:
    sid: str
    friendly_name: str
    status: str
    owner_account_sid: str
    auth_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff for 429, 5xx, timeouts and connection errors."""

    max_attempts: int = 5
    backoff: float = 0.5  # first delay; doubles each attempt
    max_backoff: float = 30.0
    max_retry_after: float = 60.0  # a Retry-After header is honoured up to this many seconds

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            seconds = _parse_retry_after(retry_after)
            if seconds is not None:
                return min(max(seconds, 0.0), self.max_retry_after)
        return min(self.backoff * (2 ** (attempt - 1)), self.max_backoff)


DEFAULT_RETRY = RetryPolicy()


def _parse_retry_after(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime.now(UTC)).total_seconds()


# --- HTTP layer ----------------------------------------------------------------------------------

class _RetryingHttpClient(TwilioHttpClient):
    """The SDK's requests-based client plus retries.

    GETs are retried on 429, 5xx, timeouts and connection errors. POSTs are retried on 429 and on
    connect timeouts only (the request was not processed), unless ``idempotent_posts`` says a
    repeat is harmless (e.g. setting an account status), because creating a subaccount twice is not.
    After the last attempt a 429/5xx response is returned for the caller to turn into an error.
    """

    def __init__(self, *, timeout: float, retry: RetryPolicy, idempotent_posts: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(timeout=timeout)
        self.retry = retry
        self.idempotent_posts = idempotent_posts
        self._sleep = sleep

    def request(self, method: str, url: str, params: dict[str, object] | None = None,
                data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        safe = method.upper() == "GET" or self.idempotent_posts
        path = url.split("?", 1)[0]
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.retry.max_attempts
            try:
                response = super().request(method, url, params=params, data=data, headers=headers,
                                           auth=auth, timeout=timeout, allow_redirects=allow_redirects)
            except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                retryable = safe or isinstance(exc, requests.ConnectTimeout)
                if last or not retryable:
                    raise UsageFetchError(
                        f"{method} {path} failed after {attempt} attempt(s): {type(exc).__name__}") from None
                delay = self.retry.delay(attempt)
                log.warning("Twilio %s %s: %s, retry %d in %.2fs", method, path, type(exc).__name__,
                            attempt, delay)
                self._sleep(delay)
                continue
            status = response.status_code
            if last or not (status == 429 or (status >= 500 and safe)):
                return response
            delay = self.retry.delay(attempt, _header(response, "Retry-After"))
            log.warning("Twilio %s %s answered %d, retry %d in %.2fs", method, path, status, attempt, delay)
            self._sleep(delay)


def _header(response: Response, name: str) -> str | None:
    headers = response.headers or {}
    value = headers.get(name)  # requests' headers are case-insensitive
    return str(value) if value is not None else None


def _client(*, auth_sid: str, auth_token: str, account_sid: str | None, base_url: str | None,
            timeout: float, retry: RetryPolicy | None, idempotent_posts: bool = False) -> Client:
    http = _RetryingHttpClient(timeout=timeout, retry=retry or DEFAULT_RETRY,
                               idempotent_posts=idempotent_posts)
    client = Client(auth_sid, auth_token, account_sid=account_sid, http_client=http)
    if base_url:
        # The Api domain reads base_url on every request and resolves next_page_uri through it.
        client.api.base_url = base_url.rstrip("/")
    return client


def _error_from_response(response: Response, what: str) -> TwilioClientError:
    status = response.status_code
    code: int | None = None
    message = ""
    try:
        body = json.loads(response.text)
        code = body.get("code")
        message = str(body.get("message", ""))[:200]
    except (ValueError, AttributeError):
        pass
    return _error(status, code, message, what)


def _error(status: int, code: int | None, message: str, what: str) -> TwilioClientError:
    text = f"{what}: Twilio answered {status}" + (f" (code {code})" if code else "") + (
        f": {message}" if message else "")
    if status == 401:
        return CredentialsInvalid(text, status=status, code=code)
    if status == 404:
        return AccountNotFound(text, status=status, code=code)
    return UsageFetchError(text, status=status, code=code)


def _from_rest_exception(exc: TwilioException, what: str) -> TwilioClientError:
    # Built from Twilio's status, code and message only; they never hold credentials.
    if isinstance(exc, TwilioRestException):
        return _error(exc.status, exc.code, exc.msg, what)
    if isinstance(exc, TwilioServiceException):  # RFC 9457 error bodies
        return _error(exc.status, exc.code, exc.title, what)
    return UsageFetchError(f"{what}: {type(exc).__name__}")


# --- Usage records -------------------------------------------------------------------------------

class _RawDailyPage(DailyPage):
    """A Daily usage page whose records are the raw JSON dicts (parsed here, leniently)."""

    def get_instance(self, payload: dict[str, Any]) -> Any:
        return payload


def _page(client: Client, response: Response, account_sid: str) -> _RawDailyPage:
    if response.status_code != 200:
        raise _error_from_response(response, f"usage of {account_sid}")
    try:
        return _RawDailyPage(client.api.v2010, response, {"account_sid": account_sid})
    except Exception as exc:  # the SDK raises bare TwilioException / json errors on odd payloads
        raise UsageFetchError(f"usage of {account_sid}: unreadable page ({type(exc).__name__})") from None


def _decimal(value: Any, name: str, *, blank_is_zero: bool = False) -> Decimal:
    if value in (None, "") and blank_is_zero:
        return Decimal(0)
    if not isinstance(value, str | int):
        raise ValueError(f"{name} is {type(value).__name__}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{name} {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{name} {value!r} is not finite")
    if number < 0:
        raise ValueError(f"{name} {value!r} is negative")
    return number


def parse_usage_record(raw: Any, account_sid: str) -> UsageRecord | None:
    """The billable record in ``raw`` (an unmapped leaf as Other), or None (roll-up, or malformed: logged)."""
    if not isinstance(raw, dict):
        log.warning("Twilio usage of %s: skipped a record that is not an object", account_sid)
        return None
    category = raw.get("category")
    if not isinstance(category, str):
        log.warning("Twilio usage of %s: skipped a record without a category", account_sid)
        return None
    product = category_product(category)
    if product is None:  # a roll-up: its children are billed
        return None
    meta = billable_category(category)
    try:
        day = date.fromisoformat(str(raw.get("start_date")))
        end = raw.get("end_date")
        if end not in (None, "") and date.fromisoformat(str(end)) != day:
            raise ValueError(f"start_date {day} != end_date {end}")
        record = UsageRecord(
            account_sid=account_sid,
            category=category,
            product=product.value,
            day=day,
            count=_decimal(raw.get("count"), "count", blank_is_zero=True),
            usage=_decimal(raw.get("usage"), "usage"),
            usage_unit=str(raw.get("usage_unit") or (meta.unit if meta else "units")),
            price=_decimal(raw.get("price"), "price"),
            price_unit=str(raw.get("price_unit") or "usd").lower(),
        )
    except ValueError as exc:
        log.warning("Twilio usage of %s: skipped malformed %s record on %r: %s", account_sid, category,
                    raw.get("start_date"), exc)
        return None
    return record


def fetch_daily_usage(*, account_sid: str, auth_sid: str, auth_token: str, start: date, end: date,
                      base_url: str | None = None, page_size: int = 1000, timeout: float = 10.0,
                      retry: RetryPolicy | None = None, include_subaccounts: bool = False,
                      totals: dict[date, Decimal] | None = None) -> Iterator[UsageRecord]:
    """Yield every billable leaf record of ``account_sid`` for UTC days ``start``..``end``.

    ``auth_sid``/``auth_token`` are the account's own credentials or its master account's. Pages
    are fetched lazily; a failure after some records were yielded raises then, so callers should
    consume the whole iterator before committing anything.
    ``totals``, when given, is filled with Twilio's ``totalprice`` of each day read (for the check of
    each day's leaves against it).
    ``IncludeSubaccounts`` is always sent (false unless asked): Twilio's own default is true, which would
    give a main account its subaccounts' usage as its own.
    Raises CredentialsInvalid (401), AccountNotFound (404) or UsageFetchError.
    """
    if not 1 <= page_size <= 1000:
        raise ValueError("page_size must be between 1 and 1000")
    if start > end:
        raise ValueError("start is after end")
    # Validation above runs at call time; the requests below run as the caller iterates.
    return _iter_daily_usage(account_sid=account_sid, auth_sid=auth_sid, auth_token=auth_token, start=start,
                             end=end, base_url=base_url, page_size=page_size, timeout=timeout, retry=retry,
                             include_subaccounts=include_subaccounts, totals=totals)


def _iter_daily_usage(*, account_sid: str, auth_sid: str, auth_token: str, start: date, end: date,
                      base_url: str | None, page_size: int, timeout: float, retry: RetryPolicy | None,
                      include_subaccounts: bool, totals: dict[date, Decimal] | None) -> Iterator[UsageRecord]:
    client = _client(auth_sid=auth_sid, auth_token=auth_token, account_sid=account_sid, base_url=base_url,
                     timeout=timeout, retry=retry)
    params: dict[str, object] = {"StartDate": start.isoformat(), "EndDate": end.isoformat(),
                                 "PageSize": page_size,
                                 "IncludeSubaccounts": "true" if include_subaccounts else "false"}
    try:
        response = client.api.v2010.page("GET", f"/Accounts/{account_sid}/Usage/Records/Daily.json",
                                          params=params, headers={"Accept": "application/json"})
        page = _page(client, response, account_sid)
        while True:
            for raw in page:
                if totals is not None and isinstance(raw, dict) and raw.get("category") == TOTAL:
                    _note_total(raw, totals)
                    continue
                record = parse_usage_record(raw, account_sid)
                if record is not None:
                    yield record
            next_url = page.next_page_url
            if not next_url:
                return
            page = _page(client, client.request("GET", next_url), account_sid)
    finally:
        _close(client)


def _note_total(raw: dict[str, Any], totals: dict[date, Decimal]) -> None:
    try:
        totals[date.fromisoformat(str(raw.get("start_date")))] = _decimal(raw.get("price"), "price")
    except ValueError:
        pass  # an unreadable total only means that day is not checked


def _close(client: Client) -> None:
    session = getattr(client.http_client, "session", None)
    if session is not None:
        session.close()


# --- Accounts ------------------------------------------------------------------------------------

def _account_info(instance: Any) -> AccountInfo:
    return AccountInfo(sid=instance.sid, friendly_name=instance.friendly_name or "", status=instance.status,
                       owner_account_sid=instance.owner_account_sid or instance.sid)


def check_credentials(*, account_sid: str, auth_sid: str, auth_token: str, base_url: str | None = None,
                      timeout: float = 10.0, retry: RetryPolicy | None = None) -> AccountInfo:
    """One ``GET Accounts/{Sid}.json``: the account if these credentials can see it.

    Raises CredentialsInvalid (401), AccountNotFound (404) or UsageFetchError.
    """
    client = _client(auth_sid=auth_sid, auth_token=auth_token, account_sid=account_sid, base_url=base_url,
                     timeout=timeout, retry=retry)
    try:
        return _account_info(client.api.v2010.accounts(account_sid).fetch())
    except TwilioException as exc:
        raise _from_rest_exception(exc, f"account {account_sid}") from None
    finally:
        _close(client)


def account_currency(*, account_sid: str, auth_sid: str, auth_token: str, base_url: str | None = None,
                     timeout: float = 10.0, retry: RetryPolicy | None = None) -> str:
    """The currency the account is billed in (``GET Accounts/{Sid}/Balance.json``), lowercase as in usage."""
    client = _client(auth_sid=auth_sid, auth_token=auth_token, account_sid=account_sid, base_url=base_url,
                     timeout=timeout, retry=retry)
    try:
        return str(client.api.v2010.accounts(account_sid).balance.fetch().currency or "").lower()
    except TwilioException as exc:
        raise _from_rest_exception(exc, f"balance of {account_sid}") from None
    finally:
        _close(client)


def set_account_status(*, account_sid: str, status: Literal["active", "suspended"], auth_sid: str,
                       auth_token: str, base_url: str | None = None, timeout: float = 10.0,
                       retry: RetryPolicy | None = None) -> AccountInfo:
    """Suspend or resume a (sub)account; usually called with its master account's credentials."""
    if status not in ("active", "suspended"):
        raise ValueError("status must be 'active' or 'suspended'")
    client = _client(auth_sid=auth_sid, auth_token=auth_token, account_sid=account_sid, base_url=base_url,
                     timeout=timeout, retry=retry, idempotent_posts=True)
    try:
        return _account_info(client.api.v2010.accounts(account_sid).update(status=status))
    except TwilioException as exc:
        raise _from_rest_exception(exc, f"account {account_sid}") from None
    finally:
        _close(client)


def create_subaccount(*, friendly_name: str, auth_sid: str, auth_token: str, base_url: str | None = None,
                      timeout: float = 10.0, retry: RetryPolicy | None = None) -> SubaccountCredentials:
    """Create a subaccount under the master account ``auth_sid``; returns its SID and auth token.

    Not retried on timeouts or 5xx (a retry could create a second subaccount): on UsageFetchError
    the caller should check for an existing subaccount with that friendly name before trying again.
    """
    client = _client(auth_sid=auth_sid, auth_token=auth_token, account_sid=auth_sid, base_url=base_url,
                     timeout=timeout, retry=retry)
    try:
        created = client.api.v2010.accounts.create(friendly_name=friendly_name)
    except TwilioException as exc:
        raise _from_rest_exception(exc, f"new subaccount of {auth_sid}") from None
    finally:
        _close(client)
    return SubaccountCredentials(sid=created.sid, friendly_name=created.friendly_name or friendly_name,
                                 status=created.status,
                                 owner_account_sid=created.owner_account_sid or auth_sid,
                                 auth_token=created.auth_token)
