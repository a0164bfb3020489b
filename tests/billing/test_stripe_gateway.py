"""Our Stripe module against localstripe: the account on every call, keys on every write, idempotency."""

from decimal import Decimal

import pytest
import stripe

from stripe_connect.gateway import AgencyStripe, stripe_js_url
from tests.billing.fixtures import ACCT_A, ACCT_B, api_requests, customer_with_card, on


def test_the_same_idempotency_key_twice_makes_one_payment_intent(localstripe, raw_stripe):
    # given a customer with a card on agency A's account
    cus, pm = customer_with_card(raw_stripe, ACCT_A)
    api = AgencyStripe(ACCT_A)

    # when our module sends the same charge twice with the same key
    first = api.payment_intent_create_off_session(
        amount=Decimal("15.00"), currency="usd", customer_id=cus.id, payment_method_id=pm.id,
        metadata={"charge": "42"}, idempotency_key="charge:alpha:42")
    second = api.payment_intent_create_off_session(
        amount=Decimal("15.00"), currency="usd", customer_id=cus.id, payment_method_id=pm.id,
        metadata={"charge": "42"}, idempotency_key="charge:alpha:42")

    # then there is one PaymentIntent, of 1500 cents
    assert second.id == first.id
    assert first.amount == 1500 and first.status == "succeeded"
    assert [pi.id for pi in raw_stripe.v1.payment_intents.list(options=on(ACCT_A)).data] == [first.id]


def test_the_same_key_with_another_amount_is_an_error_and_charges_nothing_more(localstripe, raw_stripe):
    cus, pm = customer_with_card(raw_stripe, ACCT_A)
    api = AgencyStripe(ACCT_A)
    first = api.payment_intent_create_off_session(
        amount=Decimal("15.00"), currency="usd", customer_id=cus.id, payment_method_id=pm.id, metadata={},
        idempotency_key="charge:alpha:43")

    with pytest.raises(stripe.IdempotencyError):
        api.payment_intent_create_off_session(
            amount=Decimal("25.00"), currency="usd", customer_id=cus.id, payment_method_id=pm.id, metadata={},
            idempotency_key="charge:alpha:43")

    assert [pi.id for pi in raw_stripe.v1.payment_intents.list(options=on(ACCT_A)).data] == [first.id]


def test_every_call_carries_the_agency_account_and_every_write_a_key(localstripe, raw_stripe):
    api = AgencyStripe(ACCT_B)
    cus = api.customer_create(name="Bravo client", email="x@bravo.test", metadata={}, idempotency_key="customer:b:1")
    api.customer_retrieve(cus.id)
    api.setup_intent_create(customer_id=cus.id, metadata={}, idempotency_key="setup_intent:b:1")

    requests = api_requests(localstripe)
    assert [r["stripe_account"] for r in requests] == [ACCT_B] * 3
    assert [r["idempotency_key"] for r in requests if r["method"] == "POST"] == ["customer:b:1", "setup_intent:b:1"]
    # and agency A cannot see it
    with pytest.raises(stripe.InvalidRequestError):
        AgencyStripe(ACCT_A).customer_retrieve(cus.id)


def test_a_write_without_a_key_is_refused_before_calling_stripe(localstripe):
    with pytest.raises(ValueError, match="idempotency key"):
        AgencyStripe(ACCT_A).customer_create(name="x", email="", metadata={}, idempotency_key="")
    assert api_requests(localstripe) == []


def test_stripe_js_comes_from_the_configured_base(localstripe, settings):
    assert stripe_js_url() == f"{localstripe}/js.stripe.com/v3/"
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    assert stripe_js_url() == "https://js.stripe.com/v3/"
