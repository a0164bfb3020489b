"""THE one module through which every Stripe call goes.

- Keys and base addresses are read from settings at call time (tests and the demo point them at localstripe).
- Everything about a sub-account's money lives on the agency's connected account: `AgencyStripe` puts
  `stripe_account=<agency account>` on every call it makes. An agency's own card and its wallet with the
  platform live on the platform's account: `PlatformStripe` never sends that header.
- Every write needs an idempotency key, built by the caller from our own row id.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from stripe_connect.money import to_minor_units

WEBHOOK_TOLERANCE_SECONDS = 300


class StripeNotConfigured(ImproperlyConfigured):
    pass


def _setting(name: str) -> str:
    value = getattr(settings, name, "")
    if not value:
        raise StripeNotConfigured(f"{name} is not set; Stripe cannot be used.")
    return str(value)


@functools.lru_cache(maxsize=8)
def _cached_client(secret_key: str, api_base: str, connect_base: str, client_id: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        client_id=client_id or None,
        base_addresses={"api": api_base, "connect": connect_base},
        # The SDK's own retries reuse its key only within one call; retries across calls are ours.
        max_network_retries=2,
    )


def platform_client() -> stripe.StripeClient:
    return _cached_client(
        _setting("STRIPE_SECRET_KEY"),
        _setting("STRIPE_API_BASE").rstrip("/"),
        _setting("STRIPE_CONNECT_BASE").rstrip("/"),
        getattr(settings, "STRIPE_CLIENT_ID", "") or "",
    )


def publishable_key() -> str:
    return _setting("STRIPE_PUBLISHABLE_KEY")


def stripe_js_url() -> str:
    """Real Stripe.js in production; localstripe serves its fake at <api base>/js.stripe.com/v3/."""
    configured = getattr(settings, "STRIPE_JS_URL", "")
    if configured:
        return str(configured)
    api_base = _setting("STRIPE_API_BASE").rstrip("/")
    if api_base == "https://api.stripe.com":
        return "https://js.stripe.com/v3/"
    return f"{api_base}/js.stripe.com/v3/"


def _require_key(idempotency_key: str) -> str:
    if not idempotency_key:
        raise ValueError("Every Stripe write needs an idempotency key derived from our own row id")
    return idempotency_key


class StripeCalls:
    """The calls both accounts make; which account they act on is the subclass's `_account_options`."""

    account_id: str

    def _account_options(self) -> stripe.RequestOptions:
        raise NotImplementedError

    def _options(self, idempotency_key: str | None = None) -> stripe.RequestOptions:
        options = self._account_options()
        if idempotency_key is not None:
            options["idempotency_key"] = _require_key(idempotency_key)
        return options

    @property
    def _v1(self) -> Any:
        return platform_client().v1

    # Customers ------------------------------------------------------------------------------------------------
    def customer_create(self, *, name: str, email: str, metadata: dict[str, str],
                        idempotency_key: str) -> stripe.Customer:
        params: Any = {"name": name, "metadata": metadata}
        if email:
            params["email"] = email
        return cast(stripe.Customer, self._v1.customers.create(params=params, options=self._options(idempotency_key)))

    def customer_retrieve(self, customer_id: str) -> stripe.Customer:
        return cast(stripe.Customer, self._v1.customers.retrieve(customer_id, options=self._options()))

    def customer_set_default_payment_method(self, customer_id: str, payment_method_id: str, *,
                                            idempotency_key: str) -> stripe.Customer:
        return cast(stripe.Customer, self._v1.customers.update(
            customer_id, params={"invoice_settings": {"default_payment_method": payment_method_id}},
            options=self._options(idempotency_key)))

    def customers_with_email(self, email: str, *, limit: int = 10) -> list[stripe.Customer]:
        return list(self._v1.customers.list(params={"email": email, "limit": limit}, options=self._options()).data)

    def customers_named(self, name: str, *, limit: int = 10) -> list[stripe.Customer]:
        """Customer Search by name (substring from 3 characters, as Stripe's `~` allows; exact below)."""
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        query = f'name~"{escaped}"' if len(name) >= 3 else f'name:"{escaped}"'
        return list(self._v1.customers.search(params={"query": query, "limit": limit}, options=self._options()).data)

    def customer_cards(self, customer_id: str) -> list[stripe.PaymentMethod]:
        return list(self._v1.customers.payment_methods.list(
            customer_id, params={"type": "card", "limit": 100}, options=self._options()).data)

    # Cards ----------------------------------------------------------------------------------------------------
    def setup_intent_create(self, *, customer_id: str, metadata: dict[str, str],
                            idempotency_key: str) -> stripe.SetupIntent:
        params: Any = {"customer": customer_id, "usage": "off_session", "allowed_payment_method_types": ["card"],
                       "metadata": metadata}
        return cast(stripe.SetupIntent, self._v1.setup_intents.create(
            params=params, options=self._options(idempotency_key)))

    def setup_intent_retrieve(self, setup_intent_id: str) -> stripe.SetupIntent:
        return cast(stripe.SetupIntent, self._v1.setup_intents.retrieve(setup_intent_id, options=self._options()))

    def payment_method_retrieve(self, payment_method_id: str) -> stripe.PaymentMethod:
        return cast(stripe.PaymentMethod, self._v1.payment_methods.retrieve(
            payment_method_id, options=self._options()))

    def payment_method_attach(self, payment_method_id: str, *, customer_id: str,
                              idempotency_key: str) -> stripe.PaymentMethod:
        return cast(stripe.PaymentMethod, self._v1.payment_methods.attach(
            payment_method_id, params={"customer": customer_id}, options=self._options(idempotency_key)))

    def payment_method_detach(self, payment_method_id: str, *, idempotency_key: str) -> stripe.PaymentMethod:
        return cast(stripe.PaymentMethod, self._v1.payment_methods.detach(
            payment_method_id, options=self._options(idempotency_key)))

    # Payments -------------------------------------------------------------------------------------------------
    def payment_intent_create_off_session(self, *, amount: Decimal, currency: str, customer_id: str,
                                          payment_method_id: str, metadata: dict[str, str],
                                          idempotency_key: str) -> stripe.PaymentIntent:
        params: Any = {"amount": to_minor_units(amount, currency), "currency": currency.lower(),
                       "customer": customer_id, "payment_method": payment_method_id, "off_session": True,
                       "confirm": True, "metadata": metadata}
        return cast(stripe.PaymentIntent, self._v1.payment_intents.create(
            params=params, options=self._options(idempotency_key)))

    def payment_intent_retrieve(self, payment_intent_id: str) -> stripe.PaymentIntent:
        return cast(stripe.PaymentIntent, self._v1.payment_intents.retrieve(
            payment_intent_id, options=self._options()))

    def refund_create(self, *, payment_intent_id: str, amount: Decimal, currency: str, metadata: dict[str, str],
                      idempotency_key: str) -> stripe.Refund:
        params: Any = {"payment_intent": payment_intent_id, "amount": to_minor_units(amount, currency),
                       "metadata": metadata}
        return cast(stripe.Refund, self._v1.refunds.create(params=params, options=self._options(idempotency_key)))

    def payment_intent_find(self, *, metadata_key: str, value: str) -> stripe.PaymentIntent | None:
        """The PaymentIntent whose metadata[metadata_key] is `value` (Search API; a read, never a charge)."""
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        found = list(self._v1.payment_intents.search(
            params={"query": f'metadata["{metadata_key}"]:"{escaped}"', "limit": 2}, options=self._options()).data)
        if len(found) > 1:
            raise ValueError(f"{len(found)} PaymentIntents carry {metadata_key}={value}")
        return found[0] if found else None


@dataclass(frozen=True)
class AgencyStripe(StripeCalls):
    """Calls on one agency's connected account (direct charges: the client's objects live there)."""

    account_id: str

    def __post_init__(self) -> None:
        if not self.account_id.startswith("acct_"):
            raise ValueError(f"Not a Stripe account id: {self.account_id!r}")

    def _account_options(self) -> stripe.RequestOptions:
        return stripe.RequestOptions(stripe_account=self.account_id)


@dataclass(frozen=True)
class PlatformStripe(StripeCalls):
    """Calls on the platform's own Stripe account (agencies' cards and their wallets with the platform): the
    plain API key, never a `Stripe-Account` header — the agency is the platform's customer, not Connect's."""

    account_id: str = ""

    def _account_options(self) -> stripe.RequestOptions:
        return stripe.RequestOptions()


# Platform-level calls (Connect) -------------------------------------------------------------------------------
def connect_authorize_url(*, state: str, redirect_uri: str) -> str:
    params: Any = {"response_type": "code", "scope": "read_write", "state": state, "redirect_uri": redirect_uri,
                   "client_id": _setting("STRIPE_CLIENT_ID")}
    return platform_client().oauth.authorize_url(params=params)


def connect_exchange_code(code: str) -> str:
    """The connected account's id for an authorization code (codes work once)."""
    token = platform_client().oauth.token(params={"grant_type": "authorization_code", "code": code})
    if not token.stripe_user_id:
        raise stripe.oauth_error.InvalidGrantError("invalid_grant", "No account in Stripe's answer")
    return token.stripe_user_id


def connect_deauthorize(account_id: str) -> None:
    platform_client().oauth.deauthorize(params={"client_id": _setting("STRIPE_CLIENT_ID"),
                                                "stripe_user_id": account_id})


def account_retrieve(account_id: str) -> stripe.Account:
    return platform_client().v1.accounts.retrieve(account_id)


def webhook_event_construct(payload: bytes, signature: str, *, platform: bool = False) -> stripe.Event:
    """Verify the signature on the raw body (300 s tolerance) with the endpoint's own secret (Connect events:
    STRIPE_WEBHOOK_SECRET; the platform account's: STRIPE_PLATFORM_WEBHOOK_SECRET); raises
    stripe.SignatureVerificationError."""
    secret = _setting("STRIPE_PLATFORM_WEBHOOK_SECRET" if platform else "STRIPE_WEBHOOK_SECRET")
    return stripe.Webhook.construct_event(payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
