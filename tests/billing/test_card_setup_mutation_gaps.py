"""Finishing a card setup (billing/services.py) where the rest of the suite does not look: a SetupIntent canceled or
not yet confirmed, one made for another customer, a card moved to another customer or already taken by Stripe's
event, a replaced card Stripe no longer knows, the keys of each write, and Stripe objects that arrive expanded."""

from __future__ import annotations

import logging
import re

import pytest
import stripe
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import BillingProfile, CardSetup
from billing.services import (
    CardNotConfirmed,
    _default_payment_method_id,
    _id_of,
    billing_card_sync,
    card_setup_complete,
    card_setup_start,
    setup_intent_card_confirm,
)
from devservices.localstripe_server import clear_recorded_requests
from stripe_connect.gateway import AgencyStripe
from stripe_connect.models import ConnectedAccount
from subaccounts.models import AuditEntry
from tests.billing.fixtures import ACCT_A, api_requests, on
from tests.billing.helpers import add_card_on_company_billing, confirm_like_stripe_js, profile_of
from tests.conftest import client_for


def _setup_started(world) -> CardSetup:
    return card_setup_start(subaccount=world.a.subaccounts[0], by=world.a.account_admins[0])


def _confirmed_setup(world, raw_stripe, localstripe) -> CardSetup:
    """Client 1's account admin started adding a card and Stripe.js confirmed it; not finished here yet."""
    setup = _setup_started(world)
    intent = raw_stripe.v1.setup_intents.retrieve(setup.setup_intent_id, options=on(ACCT_A))
    confirm_like_stripe_js(localstripe, setup.setup_intent_id, intent.client_secret)
    return setup


def _posts(base: str, path: str) -> list[dict]:
    return [r for r in api_requests(base) if r["method"] == "POST" and r["path"] == path]


def _on_file(agency_world, subaccount) -> BillingProfile:
    profile = profile_of(agency_world, subaccount)
    assert profile is not None
    return profile


def test_a_canceled_setup_fails_and_leaves_no_card(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given the client started adding a card, and the SetupIntent was canceled at Stripe
        setup = _setup_started(world)
        raw_stripe.v1.setup_intents.cancel(setup.setup_intent_id, options=on(ACCT_A))

        # when the setup is finished
        finished = card_setup_complete(setup=setup, actor="owner")

        # then it failed, and there is no card on file
        assert finished.status == CardSetup.Status.FAILED
        profile = BillingProfile.objects.get(subaccount=world.a.subaccounts[0])
        assert profile.card_payment_method_id == "" and not profile.has_card


def test_a_setup_stripe_has_not_confirmed_is_refused_with_the_reason(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        setup = _setup_started(world)
        with pytest.raises(CardNotConfirmed) as refused:
            card_setup_complete(setup=setup, actor="owner")
        assert str(refused.value) == "Stripe has not confirmed this card yet. Please try again."
        setup.refresh_from_db()
        assert setup.status == CardSetup.Status.STARTED


def test_a_setup_made_for_another_customer_is_refused(world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        # given a setup confirmed at Stripe, then the sub-account's customer replaced by another one
        setup = _setup_started(world)
        intent = raw_stripe.v1.setup_intents.retrieve(setup.setup_intent_id, options=on(ACCT_A))
        confirm_like_stripe_js(localstripe, setup.setup_intent_id, intent.client_secret)
        other = raw_stripe.v1.customers.create(params={"name": "Someone else"}, options=on(ACCT_A))
        BillingProfile.objects.filter(subaccount=world.a.subaccounts[0]).update(stripe_customer_id=other.id)

        # then the card is not taken for the new customer
        with pytest.raises(CardNotConfirmed) as refused:
            card_setup_complete(setup=setup, actor="owner")
        assert str(refused.value) == "This card setup does not belong to this Stripe customer."
        profile = BillingProfile.objects.get(subaccount=world.a.subaccounts[0])
        assert not profile.has_card


def test_stripe_objects_are_read_by_their_id_whether_expanded_or_not():
    customer = stripe.Customer.construct_from({"id": "cus_Expanded", "object": "customer"}, "sk_test")
    assert _id_of(customer) == "cus_Expanded"
    assert _id_of("cus_Plain") == "cus_Plain"
    assert _id_of(None) is None


def test_a_confirmed_card_found_unattached_is_attached_to_the_customer(world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        # given a setup confirmed at Stripe whose card is no longer attached to the customer when we finish it
        setup = _setup_started(world)
        intent = raw_stripe.v1.setup_intents.retrieve(setup.setup_intent_id, options=on(ACCT_A))
        confirm_like_stripe_js(localstripe, setup.setup_intent_id, intent.client_secret)
        payment_method = raw_stripe.v1.setup_intents.retrieve(setup.setup_intent_id,
                                                              options=on(ACCT_A)).payment_method
        raw_stripe.v1.payment_methods.detach(payment_method, options=on(ACCT_A))

        card_setup_complete(setup=setup, actor="owner")

        # then it is attached to the sub-account's customer again, and is the card on file
        profile = BillingProfile.objects.get(subaccount=world.a.subaccounts[0])
        assert profile.card_payment_method_id == payment_method
        attached = raw_stripe.v1.payment_methods.retrieve(payment_method, options=on(ACCT_A))
        assert attached.customer == profile.stripe_customer_id


def test_replacing_a_card_sends_each_write_with_the_new_setups_own_key(world, connected, localstripe, raw_stripe):
    # given client 1 has card 4242 on file
    subaccount = world.a.subaccounts[0]
    owner = client_for(world.a, world.a.account_admins[0])
    add_card_on_company_billing(owner, subaccount, localstripe)
    old = _on_file(world.a, subaccount)
    clear_recorded_requests(localstripe)

    # when the account admin replaces it with 4444
    add_card_on_company_billing(owner, subaccount, localstripe, number="5555555555554444")

    # then the new card became the default, and the old one was detached, each with a key naming the new setup
    with tenant_context(world.a.agency):
        setup = CardSetup.objects.latest("pk")
    profile = _on_file(world.a, subaccount)
    [default] = _posts(localstripe, f"/v1/customers/{profile.stripe_customer_id}")
    assert default["idempotency_key"] == f"default_card:alpha:{setup.pk}"
    [detach] = _posts(localstripe, f"/v1/payment_methods/{old.card_payment_method_id}/detach")
    assert detach["idempotency_key"] == f"detach_replaced:alpha:{setup.pk}:{old.card_payment_method_id}"
    assert {r["stripe_account"] for r in (default, detach)} == {ACCT_A}


def test_a_confirmed_card_found_unattached_is_attached_with_the_setups_key(world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        # given a setup confirmed at Stripe whose card was detached again before we finish it
        setup = _confirmed_setup(world, raw_stripe, localstripe)
        payment_method = raw_stripe.v1.setup_intents.retrieve(setup.setup_intent_id, options=on(ACCT_A)).payment_method
        raw_stripe.v1.payment_methods.detach(payment_method, options=on(ACCT_A))
        clear_recorded_requests(localstripe)

        card_setup_complete(setup=setup, actor="owner")

    # then it was attached with the key of this setup, on agency A's account
    [attach] = _posts(localstripe, f"/v1/payment_methods/{payment_method}/attach")
    assert (attach["idempotency_key"], attach["stripe_account"]) == (f"attach:alpha:{setup.pk}", ACCT_A)


def test_a_replaced_card_stripe_no_longer_knows_is_logged_and_the_new_card_saved(
        world, connected, localstripe, raw_stripe, caplog):
    # given the card on file is one Stripe no longer knows
    subaccount = world.a.subaccounts[0]
    owner = client_for(world.a, world.a.account_admins[0])
    add_card_on_company_billing(owner, subaccount, localstripe)
    with tenant_context(world.a.agency):
        BillingProfile.objects.filter(subaccount=subaccount).update(card_payment_method_id="pm_NoLongerAtStripe0")

    # when the account admin adds another card
    with caplog.at_level(logging.INFO, logger="billing.services"):
        response = add_card_on_company_billing(owner, subaccount, localstripe, number="5555555555554444")

    # then the new card is saved all the same, and the log says which card could not be detached and why
    assert "Your card is saved." in response.content.decode()
    assert _on_file(world.a, subaccount).card_last4 == "4444"
    [logged] = [r.getMessage() for r in caplog.records if r.name == "billing.services"]
    # (Stripe's error: its request's id, then localstripe's 404 text)
    assert re.fullmatch(r"Replaced card pm_NoLongerAtStripe0 not detached: Request req_\w+: Not Found", logged)


def test_a_setup_finished_after_stripes_event_put_its_card_on_file_keeps_that_card(
        world, connected, localstripe, raw_stripe):
    with tenant_context(world.a.agency):
        # given a confirmed setup whose card the card-on-file sync (Stripe's event) already took, before the browser
        # came back
        setup = _confirmed_setup(world, raw_stripe, localstripe)
        profile = BillingProfile.objects.get(subaccount=world.a.subaccounts[0])
        new_card = billing_card_sync(profile=profile, api=AgencyStripe(ACCT_A)).card_payment_method_id
        assert new_card
        clear_recorded_requests(localstripe)

        # when the setup is finished
        card_setup_complete(setup=setup, actor="owner")

        # then that card stays attached and on file: it is not mistaken for the card it replaces
        assert BillingProfile.objects.get(subaccount=world.a.subaccounts[0]).card_payment_method_id == new_card
    assert raw_stripe.v1.payment_methods.retrieve(new_card, options=on(ACCT_A)).customer is not None
    assert not [r for r in api_requests(localstripe) if r["path"].endswith("/detach")]


def test_a_setup_whose_card_now_belongs_to_another_customer_is_refused(world, connected, localstripe, raw_stripe):
    with tenant_context(world.a.agency):
        # given a confirmed setup whose card was then moved to another customer at Stripe
        setup = _confirmed_setup(world, raw_stripe, localstripe)
        payment_method = raw_stripe.v1.setup_intents.retrieve(setup.setup_intent_id, options=on(ACCT_A)).payment_method
        other = raw_stripe.v1.customers.create(params={"name": "Someone else"}, options=on(ACCT_A))
        raw_stripe.v1.payment_methods.detach(payment_method, options=on(ACCT_A))
        raw_stripe.v1.payment_methods.attach(payment_method, params={"customer": other.id}, options=on(ACCT_A))

        # when the setup is finished, then it is refused with the reason, and nothing is on file
        with pytest.raises(CardNotConfirmed) as refused:
            card_setup_complete(setup=setup, actor="owner")
        assert str(refused.value) == "This card belongs to another customer."
        setup.refresh_from_db()
        assert setup.status == CardSetup.Status.STARTED
        assert not BillingProfile.objects.get(subaccount=world.a.subaccounts[0]).has_card
    customer = raw_stripe.v1.customers.retrieve(_on_file(world.a, world.a.subaccounts[0]).stripe_customer_id,
                                                options=on(ACCT_A))
    assert customer.invoice_settings.default_payment_method is None


def test_confirming_a_setup_returns_the_card_stripe_saved(world, connected, localstripe, raw_stripe):
    with tenant_context(world.a.agency):
        setup = _confirmed_setup(world, raw_stripe, localstripe)
        profile = BillingProfile.objects.get(subaccount=world.a.subaccounts[0])
        saved = raw_stripe.v1.setup_intents.retrieve(setup.setup_intent_id, options=on(ACCT_A)).payment_method

        confirmed = setup_intent_card_confirm(
            api=AgencyStripe(ACCT_A), setup_intent_id=setup.setup_intent_id, customer_id=profile.stripe_customer_id,
            previous_payment_method_id="", key=lambda what, *more: f"{what}:test:{setup.pk}")

    assert confirmed == saved


def test_a_customers_default_card_is_read_whether_stripe_sends_its_id_or_the_card_itself():
    def customer(default):
        return stripe.Customer.construct_from(
            {"id": "cus_X", "object": "customer", "invoice_settings": {"default_payment_method": default}}, "sk_test")

    assert _default_payment_method_id(customer("pm_Plain")) == "pm_Plain"
    assert _default_payment_method_id(customer({"id": "pm_Expanded", "object": "payment_method"})) == "pm_Expanded"
    assert _default_payment_method_id(customer(None)) is None


def test_a_setup_finished_after_the_agency_connected_another_account_is_refused_with_the_reason(
        world, connected, raw_stripe, localstripe):
    # given a setup confirmed on agency A's account, then agency A connected another account
    with tenant_context(world.a.agency):
        setup = _confirmed_setup(world, raw_stripe, localstripe)
    connection.set_schema_to_public()
    ConnectedAccount.objects.filter(agency=world.a.agency).update(account_id="acct_1RebillAlphaNEWAA")

    # then finishing it says why nothing was done
    with tenant_context(world.a.agency), pytest.raises(CardNotConfirmed) as refused:
        card_setup_complete(setup=setup, actor="owner")
    assert str(refused.value) == ("This card setup was made on a Stripe account your agency is no longer connected "
                                  "to, so nothing was changed. Start again from Company Billing.")
    assert not _on_file(world.a, world.a.subaccounts[0]).has_card


def test_a_setup_whose_sub_accounts_customer_now_lives_on_another_account_is_refused(
        world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        # given a setup confirmed at Stripe, then the sub-account's customer recorded on another account
        setup = _confirmed_setup(world, raw_stripe, localstripe)
        BillingProfile.objects.filter(subaccount=world.a.subaccounts[0]).update(
            stripe_account_id="acct_1RebillAlphaNEWAA")

        # then the card is not taken
        with pytest.raises(CardNotConfirmed) as refused:
            card_setup_complete(setup=setup, actor="owner")
        assert str(refused.value) == "This card setup does not belong to this sub-account's Stripe customer."
        assert not BillingProfile.objects.get(subaccount=world.a.subaccounts[0]).has_card


def test_a_finished_setup_says_when_and_its_card_sync_is_audited_as_the_person_who_finished_it(
        world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        setup = _confirmed_setup(world, raw_stripe, localstripe)
        before = timezone.now()
        finished = card_setup_complete(setup=setup, actor="owner1@alpha-client.test")
        finished.refresh_from_db()
        assert finished.status == CardSetup.Status.SUCCEEDED and before <= finished.completed_at <= timezone.now()
        assert [(entry.action, entry.actor) for entry in AuditEntry.objects.order_by("pk")] == [
            (AuditEntry.Action.CARD_SYNCED, "owner1@alpha-client.test"),
            (AuditEntry.Action.CARD_SET, "owner1@alpha-client.test")]
