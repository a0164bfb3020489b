"""Finishing a card setup (billing/services.py) where the rest of the suite does not look: a SetupIntent canceled or
not yet confirmed, one made for another customer, and Stripe objects that arrive expanded."""

from __future__ import annotations

import pytest
import stripe
from django_tenants.utils import tenant_context

from billing.models import BillingProfile, CardSetup
from billing.services import CardNotConfirmed, _id_of, card_setup_complete, card_setup_start
from tests.billing.fixtures import ACCT_A, on
from tests.billing.helpers import confirm_like_stripe_js


def _setup_started(world) -> CardSetup:
    return card_setup_start(subaccount=world.a.subaccounts[0], by=world.a.account_admins[0])


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
