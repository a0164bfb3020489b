"""stripe_connect where the rest of the suite does not look: how customers are searched by name or email, and what a
real deauthorization leaves in the log."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from devservices.localstripe_server import clear_recorded_requests, register_account
from stripe_connect.gateway import AgencyStripe
from stripe_connect.models import ConnectedAccount
from tests.billing.fixtures import (
    ACCT_A,
    ACCT_B,
    api_requests,
    customer_with_card,
    event_payload,
    on,
    post_webhook,
    sign,
)
from tests.conftest import client_for


def test_a_name_of_three_letters_or_more_is_searched_as_part_of_a_name_and_a_shorter_one_exactly(
        localstripe, raw_stripe):
    # given customers "Zeta Corp" and "Ze" on agency A's account, and a "Zeta Corp" on agency B's
    for name in ("Zeta Corp", "Ze"):
        raw_stripe.v1.customers.create(params={"name": name}, options=on(ACCT_A))
    raw_stripe.v1.customers.create(params={"name": "Zeta Corp"}, options=on(ACCT_B))
    api = AgencyStripe(ACCT_A)

    # then three letters find every name containing them; two find only that exact name; only on A's account
    assert [c.name for c in api.customers_named("Zet")] == ["Zeta Corp"]
    assert [c.name for c in api.customers_named("Ze")] == ["Ze"]


def test_a_name_with_quotes_and_backslashes_is_searched_as_written(localstripe, raw_stripe):
    raw_stripe.v1.customers.create(params={"name": 'The "Zed" \\ Partners'}, options=on(ACCT_A))

    assert [c.name for c in AgencyStripe(ACCT_A).customers_named('"Zed" \\')] == ['The "Zed" \\ Partners']


def test_a_search_by_name_offers_at_most_ten_customers(localstripe, raw_stripe):
    for index in range(11):
        raw_stripe.v1.customers.create(params={"name": f"Acme branch {index}"}, options=on(ACCT_A))

    assert len(AgencyStripe(ACCT_A).customers_named("Acme")) == 10


def test_a_search_by_email_offers_at_most_ten_customers(localstripe, raw_stripe):
    for index in range(11):
        raw_stripe.v1.customers.create(params={"name": f"Branch {index}", "email": "pay@acme.test"},
                                       options=on(ACCT_A))

    assert len(AgencyStripe(ACCT_A).customers_with_email("pay@acme.test")) == 10


def test_a_real_deauthorization_is_logged_with_the_account_it_disconnected(world, connected, localstripe,
                                                                           raw_stripe, caplog):
    # given agency A revoked our access at Stripe
    register_account(localstripe, account_id=ACCT_A, name="Alpha")
    raw_stripe.oauth.deauthorize(params={"client_id": "ca_rebill", "stripe_user_id": ACCT_A})
    payload = event_payload(event_id="evt_deauth_logged", event_type="account.application.deauthorized",
                            obj={"id": "ca_rebill", "object": "application"}, account=ACCT_A)

    # when Stripe tells us
    with caplog.at_level(logging.INFO, logger="stripe_connect.webhooks"):
        answer = post_webhook(payload, sign(payload))
    assert (answer.status_code, answer.content) == (200, b"ok")

    # then agency A is disconnected, and the log says which account and why
    assert not ConnectedAccount.objects.filter(account_id=ACCT_A).exists()
    assert [r.getMessage() for r in caplog.records if r.name == "stripe_connect.webhooks"] == [
        f"Stripe account {ACCT_A} deauthorized our platform; disconnected"]


def test_each_refused_event_is_answered_400_with_the_reason(world, connected, caplog):
    unknown = "acct_1NobodyWeKnow0000"
    not_json = b"not an event"
    platform_event = event_payload(event_id="evt_platform", event_type="customer.updated", obj={"id": "cus_x"},
                                   account=None)
    stranger = event_payload(event_id="evt_stranger", event_type="customer.updated", obj={"id": "cus_x"},
                             account=unknown)

    with caplog.at_level(logging.WARNING, logger="stripe_connect.webhooks"):
        answers = [post_webhook(payload, signature) for payload, signature in (
            (stranger, sign(stranger, secret="whsec_someone_else")), (not_json, sign(not_json)),
            (platform_event, sign(platform_event)), (stranger, sign(stranger)))]

    assert [(a.status_code, a.content.decode()) for a in answers[1:]] == [
        (400, "Not a Stripe event"),
        (400, "Not a connected account's event: the platform account's events have their own endpoint"),
        (400, f"Unknown account {unknown}")]
    assert answers[0].status_code == 400
    assert answers[0].content.decode().startswith("Bad signature: No signatures found matching the expected signature")
    assert [r.getMessage() for r in caplog.records if r.name == "stripe_connect.webhooks"] == [
        f"Stripe event evt_stranger (customer.updated) for unknown account {unknown} rejected"]


def test_the_stripe_settings_page_shows_no_error_until_something_fails(world, db):
    page = client_for(world.b, world.b.admin).get("/agency/settings/stripe/")

    assert page.status_code == 200
    assert "Not connected" in page.content.decode() and 'class="errors"' not in page.content.decode()


def test_a_refund_is_made_on_the_agencys_account_for_the_amount_asked_with_our_key(localstripe, raw_stripe):
    # given a 15.00 USD charge on agency A's account
    cus, pm = customer_with_card(raw_stripe, ACCT_A)
    api = AgencyStripe(ACCT_A)
    intent = api.payment_intent_create_off_session(
        amount=Decimal("15.00"), currency="usd", customer_id=cus.id, payment_method_id=pm.id, metadata={},
        idempotency_key="charge:alpha:1")
    clear_recorded_requests(localstripe)

    # when 5.25 of it is refunded
    refund = api.refund_create(payment_intent_id=intent.id, amount=Decimal("5.25"), currency="usd",
                               metadata={"rebill_refund": "1"}, idempotency_key="refund:alpha:1")

    # then Stripe holds a refund of 525 cents of that charge, labelled with our row, asked for with our key
    stored = raw_stripe.v1.refunds.retrieve(refund.id, options=on(ACCT_A))
    assert (stored.payment_intent, stored.amount, stored.metadata.to_dict()) == (
        intent.id, 525, {"rebill_refund": "1"})
    assert [(r["method"], r["path"], r["stripe_account"], r["idempotency_key"]) for r in api_requests(localstripe)
            if r["method"] == "POST"] == [("POST", "/v1/refunds", ACCT_A, "refund:alpha:1")]


def test_a_payment_intent_is_found_by_our_metadata_and_two_with_the_same_are_an_error(localstripe, raw_stripe):
    # given charges on agency A's account labelled with our charge rows: one 7, three 8s
    cus, pm = customer_with_card(raw_stripe, ACCT_A)
    api = AgencyStripe(ACCT_A)

    def charge(row: str, key: str) -> str:
        return api.payment_intent_create_off_session(
            amount=Decimal("1.00"), currency="usd", customer_id=cus.id, payment_method_id=pm.id,
            metadata={"rebill_charge": row}, idempotency_key=key).id

    seven = charge("7", "charge:alpha:7")
    quoted = charge('7 "b\\', "charge:alpha:7q")
    for key in ("charge:alpha:8a", "charge:alpha:8b", "charge:alpha:8c"):
        charge("8", key)

    # then row 7's is found (and a value with a quote and a backslash is matched as written), row 9 has none, and
    # several for row 8 are refused rather than picking one (the search stops at the second)
    found = api.payment_intent_find(metadata_key="rebill_charge", value="7")
    assert found is not None and found.id == seven
    found = api.payment_intent_find(metadata_key="rebill_charge", value='7 "b\\')
    assert found is not None and found.id == quoted
    assert api.payment_intent_find(metadata_key="rebill_charge", value="9") is None
    with pytest.raises(ValueError) as refused:
        api.payment_intent_find(metadata_key="rebill_charge", value="8")
    assert str(refused.value) == "2 PaymentIntents carry rebill_charge=8"
