"""Every Stripe call about a sub-account is built from the agency's *current* connection: a row written while
another account was connected is refused (clear error, nothing changed); a customer deleted in the agency's
Stripe dashboard is forgotten and replaced instead of blocking card setup forever."""

from __future__ import annotations

import re

from django.db import connection
from django_tenants.utils import tenant_context

from billing.models import BillingProfile, CardSetup
from devservices.localstripe_server import clear_recorded_requests
from stripe_connect.models import ConnectedAccount, WebhookEvent
from stripe_connect.webhooks import webhook_event_handle
from subaccounts.models import AuditEntry
from tests.billing.fixtures import ACCT_A, api_requests, on
from tests.billing.helpers import add_card_on_company_billing, confirm_like_stripe_js, profile_of
from tests.conftest import client_for

ACCT_A_NEW = "acct_1RebillAlphaNEWAA"


def _reconnect(world_a, account_id: str) -> None:
    """Agency A disconnects and connects another Stripe account."""
    connection.set_schema_to_public()
    ConnectedAccount.objects.filter(agency=world_a.agency).update(account_id=account_id)


def _writes(base: str) -> list[dict]:
    return [r for r in api_requests(base) if r["method"] in ("POST", "DELETE")]


def test_a_card_setup_started_on_the_previous_account_is_refused(world, connected, localstripe, raw_stripe):
    # given a card setup started (and confirmed by Stripe.js) while agency A was connected to ACCT_A
    subaccount = world.a.subaccounts[0]
    owner = client_for(world.a, world.a.account_admins[0])
    start = owner.post(f"/accounts/{subaccount.pk}/billing/card/")
    html = owner.get(start["Location"]).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    confirm_like_stripe_js(localstripe, client_secret.split("_secret_")[0], client_secret)
    # and the agency then connected another account
    _reconnect(world.a, ACCT_A_NEW)
    clear_recorded_requests(localstripe)

    # when the browser finishes it, or opens its page again
    done = owner.post(start["Location"] + "done/", follow=True)
    page = owner.get(start["Location"], follow=True)

    # then both say so, and nothing changed here or at Stripe (not a single call on the old account)
    for response in (done, page):
        assert "no longer connected to" in response.content.decode()
    with tenant_context(world.a.agency):
        assert CardSetup.objects.get().status == CardSetup.Status.STARTED
        assert not profile_of(world.a, subaccount).has_card
        assert not AuditEntry.objects.filter(action=AuditEntry.Action.CARD_SET).exists()
    assert not [r for r in api_requests(localstripe) if r["stripe_account"] == ACCT_A]
    assert _writes(localstripe) == []


def test_a_card_on_the_previous_account_is_not_removed_through_the_new_one(world, connected, localstripe, raw_stripe):
    # given a card on file on ACCT_A, then agency A connected another account
    subaccount = world.a.subaccounts[0]
    owner = client_for(world.a, world.a.account_admins[0])
    add_card_on_company_billing(owner, subaccount, localstripe)
    card_id = profile_of(world.a, subaccount).card_payment_method_id
    _reconnect(world.a, ACCT_A_NEW)
    clear_recorded_requests(localstripe)

    # when the account admin removes the card
    response = owner.post(f"/accounts/{subaccount.pk}/billing/card/remove/", follow=True)

    # then it is refused with the reason, and nothing changed here or at Stripe
    assert "no longer connected to" in response.content.decode()
    assert profile_of(world.a, subaccount).card_payment_method_id == card_id
    assert api_requests(localstripe) == []
    assert raw_stripe.v1.payment_methods.retrieve(card_id, options=on(ACCT_A)).customer is not None
    # and agency B's client was never touched
    assert profile_of(world.b, world.b.subaccounts[0]) is None


def test_an_event_of_the_previous_account_handled_after_a_reconnect_changes_nothing(
        world, connected, localstripe, raw_stripe):
    # given an event about a card setup on ACCT_A, stored while ACCT_A was connected but not handled yet
    subaccount = world.a.subaccounts[0]
    owner = client_for(world.a, world.a.account_admins[0])
    start = owner.post(f"/accounts/{subaccount.pk}/billing/card/")
    html = owner.get(start["Location"]).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    setup_intent_id = client_secret.split("_secret_")[0]
    confirm_like_stripe_js(localstripe, setup_intent_id, client_secret)
    connection.set_schema_to_public()
    inbox = WebhookEvent.objects.create(
        event_id="evt_before_reconnect", event_type="setup_intent.succeeded", account_id=ACCT_A,
        agency=world.a.agency, payload={"data": {"object": {"id": setup_intent_id}}})
    _reconnect(world.a, ACCT_A_NEW)
    clear_recorded_requests(localstripe)

    # when it is handled (a retry after the reconnect)
    webhook_event_handle(inbox_id=inbox.pk)

    # then nothing was done with the old account, and no card is on file
    assert api_requests(localstripe) == []
    with tenant_context(world.a.agency):
        assert CardSetup.objects.get().status == CardSetup.Status.STARTED
    assert not profile_of(world.a, subaccount).has_card


def test_a_customer_deleted_in_the_stripe_dashboard_is_forgotten_and_replaced(
        world, connected, localstripe, raw_stripe):
    # given client 1 added a card, so it has a customer on agency A's account
    subaccount = world.a.subaccounts[0]
    owner = client_for(world.a, world.a.account_admins[0])
    add_card_on_company_billing(owner, subaccount, localstripe)
    profile = profile_of(world.a, subaccount)
    deleted_id = profile.stripe_customer_id
    # and the agency deleted that customer in its Stripe dashboard
    raw_stripe.v1.customers.delete(deleted_id, options=on(ACCT_A))
    clear_recorded_requests(localstripe)

    # when the account admin adds a card again
    response = add_card_on_company_billing(owner, subaccount, localstripe, number="5555555555554444")

    # then it works, on a new customer of agency A's account, made with a new key that carries our row id
    assert "Your card is saved." in response.content.decode()
    profile = profile_of(world.a, subaccount)
    assert profile.stripe_customer_id and profile.stripe_customer_id != deleted_id
    assert profile.card_last4 == "4444" and profile.stripe_account_id == ACCT_A
    customer = raw_stripe.v1.customers.retrieve(profile.stripe_customer_id, options=on(ACCT_A))
    assert customer.invoice_settings.default_payment_method == profile.card_payment_method_id
    [create] = [r for r in api_requests(localstripe) if r["method"] == "POST" and r["path"] == "/v1/customers"]
    assert create["idempotency_key"] == f"customer:alpha:{profile.pk}:{ACCT_A}:replacing:{deleted_id}"
    assert create["stripe_account"] == ACCT_A
    # and the forgotten customer is in the audit log
    with tenant_context(world.a.agency):
        forgotten = AuditEntry.objects.get(action=AuditEntry.Action.CUSTOMER_FORGOTTEN)
        assert forgotten.subaccount_id == subaccount.pk
        assert forgotten.before["stripe_customer_id"] == deleted_id
        assert BillingProfile.objects.filter(stripe_customer_id=deleted_id).count() == 0
    # and client 2 (whose customer still exists) keeps its customer when it adds a card
    other = world.a.subaccounts[1]
    add_card_on_company_billing(client_for(world.a, world.a.account_admins[1]), other, localstripe)
    kept = profile_of(world.a, other).stripe_customer_id
    add_card_on_company_billing(client_for(world.a, world.a.account_admins[1]), other, localstripe)
    assert profile_of(world.a, other).stripe_customer_id == kept
    with tenant_context(world.a.agency):
        assert AuditEntry.objects.filter(action=AuditEntry.Action.CUSTOMER_FORGOTTEN).count() == 1
