"""Helpers for the phone tests: Twilio accounts in the fake and providers set through the services."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from devservices.fake_twilio import create_account, request_log, set_usage
from phone.models import SubAccountProvider, UsageLine
from phone.services import provider_set_lc_phone, provider_set_twilio


def sid(name: str) -> str:
    return "AC" + hashlib.md5(name.encode()).hexdigest()


def token(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def agency_twilio_account(url: str, name: str) -> tuple[str, str]:
    """An agency's own Twilio account in the fake: (sid, auth token)."""
    account_sid, auth_token = sid(name), token(name)
    create_account(url, account_sid, auth_token, friendly_name=name)
    return account_sid, auth_token


def use_twilio(url: str, *, subaccount, admin, name: str) -> tuple[SubAccountProvider, str]:
    account_sid, auth_token = agency_twilio_account(url, name)
    provider = provider_set_twilio(subaccount=subaccount, account_sid=account_sid, auth_token=auth_token, by=admin)
    return provider, auth_token


def use_lc_phone(*, subaccount, admin) -> SubAccountProvider:
    return provider_set_lc_phone(subaccount=subaccount, by=admin)


def today() -> date:
    return timezone.now().date()


def window_days() -> list[date]:
    return [today() - timedelta(days=back) for back in (2, 1, 0)]


def usage(category: str, day: date, units: int | str, price: str = "0", count: int | str | None = None) -> dict:
    return {"category": category, "date": day, "usage": str(units), "count": str(count if count is not None else units),
            "price": price}


def put_usage(url: str, account_sid: str, records: list[dict]) -> None:
    set_usage(url, account_sid, records)


def lines_of(provider: SubAccountProvider) -> dict[tuple[str, date], UsageLine]:
    return {(line.category, line.day): line for line in UsageLine.objects.filter(subaccount=provider.subaccount)}


def snapshot(lines) -> set[tuple]:
    return {(line.account_sid, line.category, line.day, line.units, line.count, line.cost, line.twilio_price,
             line.revision) for line in lines}


D = Decimal


ADD_PRICE_URL = "/admin/pricebook/lcphoneprice/add/"


def price_moment(when) -> dict[str, str]:
    """The admin's split date and time fields of a price's effective_from."""
    return {"effective_from_0": when.strftime("%Y-%m-%d"), "effective_from_1": when.strftime("%H:%M:%S")}


@contextmanager
def while_lc_phone_is_called(twilio_url: str, account_sid: str, action: Callable[[], object]) -> Iterator[None]:
    """Runs `action`, on a connection of its own, once the code inside the `with` has sent LC Phone its first POST
    for this account (a call the test holds with a sleep fault). The `with` ends after the action, and fails the
    test with the action's error."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            deadline = time.monotonic() + 30
            while not any(r["method"] == "POST" for r in request_log(twilio_url, account_sid)):
                assert time.monotonic() < deadline, "LC Phone was never called"
                time.sleep(0.02)
            action()
        except BaseException as error:  # noqa: BLE001 — reported below, from the test's own thread
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=60)
    assert errors == []


def logged_by_providers(caplog: Any, action: Callable[[], object]) -> tuple[object, list[str]]:
    """What `action` returns, and what phone.services.providers logs (INFO and up) while it runs."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="phone.services.providers"):
        result = action()
    return result, [r.getMessage() for r in caplog.records if r.name == "phone.services.providers"]
