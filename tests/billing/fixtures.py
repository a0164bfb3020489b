"""A real localstripe (our launcher) for the whole test session, and the settings that point Rebill at it.

Imported by tests/billing/conftest.py and by the billing browser tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from django.test import Client
from django.test.utils import override_settings

from devservices.localstripe_server import recorded_requests, reset

SECRET_KEY = "sk_test_rebill_tests"
PUBLISHABLE_KEY = "pk_test_rebill_tests"
WEBHOOK_SECRET = "whsec_rebill_tests"
PLATFORM_WEBHOOK_SECRET = "whsec_rebill_platform_tests"
CLIENT_ID = "ca_rebill_tests"
ACCT_A = "acct_1RebillAlphaAAAAA"
ACCT_B = "acct_1RebillBravoBBBBB"


@pytest.fixture(scope="session")
def localstripe_base(localstripe_url: str) -> Iterator[str]:
    """The session's localstripe, with Rebill's Stripe settings pointed at it."""
    with override_settings(
        STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY, STRIPE_CLIENT_ID=CLIENT_ID,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, STRIPE_PLATFORM_WEBHOOK_SECRET=PLATFORM_WEBHOOK_SECRET,
        STRIPE_API_BASE=localstripe_url, STRIPE_CONNECT_BASE=localstripe_url,
        STRIPE_JS_URL="",
    ):
        yield localstripe_url


@pytest.fixture
def localstripe(localstripe_base: str) -> str:
    """Forget every Stripe object, key and recorded request before the test."""
    reset(localstripe_base)
    return localstripe_base


@pytest.fixture
def raw_stripe(localstripe: str) -> stripe.StripeClient:
    """The SDK straight at localstripe, for what the test itself sets up or checks (not product code)."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe, "connect": localstripe},
                               max_network_retries=0)


def on(account: str | None) -> stripe.RequestOptions:
    return stripe.RequestOptions(stripe_account=account) if account else stripe.RequestOptions()


def card(number: str = "4242424242424242", exp_month: int = 12, exp_year: int = 2034) -> Any:
    return {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": "123"}


def customer_with_card(raw: stripe.StripeClient, account: str, *, number: str = "4242424242424242",
                       exp_month: int = 12, **customer: Any) -> tuple[stripe.Customer, stripe.PaymentMethod]:
    cus = raw.v1.customers.create(params=customer, options=on(account))  # type: ignore[arg-type]
    pm = raw.v1.payment_methods.create(params={"type": "card", "card": card(number, exp_month)}, options=on(account))
    raw.v1.payment_methods.attach(pm.id, params={"customer": cus.id}, options=on(account))
    return cus, pm


def api_requests(base: str) -> list[dict[str, Any]]:
    return [r for r in recorded_requests(base) if r["path"].startswith("/v1/")]


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def event_payload(*, event_id: str, event_type: str, obj: dict[str, Any], account: str | None) -> bytes:
    event: dict[str, Any] = {"id": event_id, "object": "event", "type": event_type, "api_version": "2025-01-01",
                             "created": int(time.time()), "livemode": False, "data": {"object": obj}}
    if account:
        event["account"] = account
    return json.dumps(event).encode()


def post_webhook(payload: bytes, signature: str, *, raise_request_exception: bool = True,
                 path: str = "/stripe/webhook/") -> Any:
    """To the platform domain, as Stripe does (the Connect endpoint unless `path` says the platform's)."""
    client = Client(HTTP_HOST="localhost", raise_request_exception=raise_request_exception)
    return client.post(path, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)
