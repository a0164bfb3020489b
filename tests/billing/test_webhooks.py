"""The webhook endpoint on the platform domain: signature, tolerance, once-only, routing by account."""

import logging
import time

from django_tenants.utils import tenant_context

from billing.models import BillingProfile, PaymentIntentRecord
from devservices.localstripe_server import clear_recorded_requests
from stripe_connect.models import WebhookEvent
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


def _link(agency_world, subaccount, account, customer_id):
    with tenant_context(agency_world.agency):
        return BillingProfile.objects.create(subaccount=subaccount, stripe_account_id=account,
                                             stripe_customer_id=customer_id)


def _card(agency_world, profile):
    with tenant_context(agency_world.agency):
        profile.refresh_from_db()
        return profile.card_payment_method_id, profile.card_last4


def test_a_bad_signature_is_refused_and_nothing_is_stored(world, connected, raw_stripe):
    payload = event_payload(event_id="evt_bad", event_type="customer.updated", obj={"id": "cus_x"}, account=ACCT_A)

    for signature in (sign(payload, secret="whsec_someone_else"), "t=1,v1=deadbeef", ""):
        response = post_webhook(payload, signature)
        assert response.status_code == 400

    tampered = payload.replace(b"cus_x", b"cus_y")
    assert post_webhook(tampered, sign(payload)).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_an_event_signed_more_than_300_seconds_ago_is_refused(world, connected):
    payload = event_payload(event_id="evt_old", event_type="customer.updated", obj={"id": "cus_x"}, account=ACCT_A)

    assert post_webhook(payload, sign(payload, timestamp=int(time.time()) - 301)).status_code == 400
    assert not WebhookEvent.objects.exists()
    assert post_webhook(payload, sign(payload, timestamp=int(time.time()) - 250)).status_code == 200


def test_the_same_event_twice_is_handled_once(world, connected, raw_stripe, localstripe):
    # given agency A's client linked to a customer whose card Stripe knows
    cus, pm = customer_with_card(raw_stripe, ACCT_A)
    profile = _link(world.a, world.a.subaccounts[0], ACCT_A, cus.id)
    payload = event_payload(event_id="evt_twice", event_type="customer.updated", obj={"id": cus.id}, account=ACCT_A)
    clear_recorded_requests(localstripe)

    # when Stripe delivers the event twice
    first = post_webhook(payload, sign(payload))
    requests_after_first = len(api_requests(localstripe))
    second = post_webhook(payload, sign(payload))

    # then it is stored once, handled once (no second look at Stripe), and the card is on file
    assert first.status_code == second.status_code == 200
    stored = WebhookEvent.objects.get(event_id="evt_twice")
    assert (stored.status, stored.attempts, stored.agency_id) == (WebhookEvent.Status.HANDLED, 1, world.a.agency.pk)
    assert requests_after_first > 0
    assert len(api_requests(localstripe)) == requests_after_first
    assert _card(world.a, profile) == (pm.id, "4242")
    assert all(r["stripe_account"] == ACCT_A for r in api_requests(localstripe))


def test_an_event_for_an_unknown_account_is_refused_and_logged(world, connected, caplog):
    payload = event_payload(event_id="evt_stranger", event_type="customer.updated", obj={"id": "cus_x"},
                            account="acct_1NobodyWeKnow0000")

    with caplog.at_level(logging.WARNING, logger="stripe_connect.webhooks"):
        response = post_webhook(payload, sign(payload))

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()
    assert any("acct_1NobodyWeKnow0000" in record.getMessage() and "evt_stranger" in record.getMessage()
               for record in caplog.records)


def test_agency_as_event_never_changes_agency_bs_data(world, connected, raw_stripe, localstripe):
    # given each agency's client linked to a customer on its own account
    cus_a, pm_a = customer_with_card(raw_stripe, ACCT_A)
    cus_b, pm_b = customer_with_card(raw_stripe, ACCT_B, number="5555555555554444")
    profile_a = _link(world.a, world.a.subaccounts[0], ACCT_A, cus_a.id)
    profile_b = _link(world.b, world.b.subaccounts[0], ACCT_B, cus_b.id)
    # and B's customer's card changes at Stripe
    raw_stripe.v1.payment_methods.detach(pm_b.id, options=on(ACCT_B))

    # when an event from A's account names B's customer (and one names A's own)
    for event_id, customer in (("evt_a_names_b", cus_b.id), ("evt_a_names_a", cus_a.id)):
        payload = event_payload(event_id=event_id, event_type="customer.updated", obj={"id": customer},
                                account=ACCT_A)
        assert post_webhook(payload, sign(payload)).status_code == 200

    # then only A's data moved: B's sub-account was never looked at, and nothing was asked of B's account
    assert _card(world.a, profile_a) == (pm_a.id, "4242")
    assert _card(world.b, profile_b) == ("", "")
    with tenant_context(world.b.agency):
        assert not BillingProfile.objects.exclude(pk=profile_b.pk).exists()
    assert all(r["stripe_account"] == ACCT_A for r in api_requests(localstripe) if r["method"] == "GET")


def test_payment_intent_events_are_recorded_from_stripes_current_state(world, connected, raw_stripe):
    cus, pm = customer_with_card(raw_stripe, ACCT_A)
    _link(world.a, world.a.subaccounts[0], ACCT_A, cus.id)
    intent = raw_stripe.v1.payment_intents.create(
        params={"amount": 1234, "currency": "usd", "customer": cus.id, "payment_method": pm.id,
                "off_session": True, "confirm": True}, options=on(ACCT_A))
    # the event's payload is stale ("processing"): the handler must ask Stripe
    payload = event_payload(event_id="evt_pi", event_type="payment_intent.succeeded",
                            obj={"id": intent.id, "status": "processing"}, account=ACCT_A)

    assert post_webhook(payload, sign(payload)).status_code == 200

    with tenant_context(world.a.agency):
        record = PaymentIntentRecord.objects.get(payment_intent_id=intent.id)
        assert (record.status, record.amount_minor, record.currency, record.subaccount) == (
            "succeeded", 1234, "usd", world.a.subaccounts[0])
    with tenant_context(world.b.agency):
        assert not PaymentIntentRecord.objects.exists()


def test_an_event_whose_handling_fails_is_kept_and_handled_on_stripes_retry(world, connected, raw_stripe,
                                                                            settings):
    # given a linked client, and Stripe unreachable while the event is handled
    cus, pm = customer_with_card(raw_stripe, ACCT_A)
    profile = _link(world.a, world.a.subaccounts[0], ACCT_A, cus.id)
    payload = event_payload(event_id="evt_retry", event_type="customer.updated", obj={"id": cus.id}, account=ACCT_A)
    reachable = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"

    # when it is delivered, then we answer 500 so Stripe retries, and the event is kept, not handled
    response = post_webhook(payload, sign(payload), raise_request_exception=False)
    assert response.status_code == 500
    stored = WebhookEvent.objects.get(event_id="evt_retry")
    assert (stored.status, stored.attempts) == (WebhookEvent.Status.FAILED, 1)
    assert _card(world.a, profile) == ("", "")

    # and Stripe's retry, once Stripe answers again, handles it
    settings.STRIPE_API_BASE = reachable
    assert post_webhook(payload, sign(payload)).status_code == 200
    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == (WebhookEvent.Status.HANDLED, 2)
    assert _card(world.a, profile) == (pm.id, "4242")


def test_an_agency_disconnecting_us_at_stripe_disconnects_it_here(world, connected, localstripe, raw_stripe):
    from devservices.localstripe_server import register_account
    from stripe_connect.models import ConnectedAccount

    # given agency A's account is reachable: a (forged or stale) deauthorization changes nothing
    register_account(localstripe, account_id=ACCT_A, name="Alpha")
    payload = event_payload(event_id="evt_deauth_1", event_type="account.application.deauthorized",
                            obj={"id": "ca_rebill", "object": "application"}, account=ACCT_A)
    assert post_webhook(payload, sign(payload)).status_code == 200
    assert ConnectedAccount.objects.filter(account_id=ACCT_A).exists()

    # when the agency really revokes our access at Stripe
    raw_stripe.oauth.deauthorize(params={"client_id": "ca_rebill", "stripe_user_id": ACCT_A})
    payload = event_payload(event_id="evt_deauth_2", event_type="account.application.deauthorized",
                            obj={"id": "ca_rebill", "object": "application"}, account=ACCT_A)
    assert post_webhook(payload, sign(payload)).status_code == 200

    # then agency A is disconnected, and B is not
    assert not ConnectedAccount.objects.filter(account_id=ACCT_A).exists()
    assert ConnectedAccount.objects.filter(account_id=ACCT_B).exists()
