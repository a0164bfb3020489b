"""Billing holes that planted bugs slipped through: one Stripe customer per sub-account, and card setups scoped
to their own sub-account."""

import re

from django_tenants.utils import tenant_context

from billing.models import BillingProfile, CardSetup
from devservices.localstripe_server import clear_recorded_requests
from subaccounts.models import AuditEntry
from tests.billing.fixtures import ACCT_A, api_requests, on
from tests.billing.helpers import confirm_like_stripe_js, profile_of
from tests.conftest import client_for


def _add_card(client, subaccount, localstripe):
    start = client.post(f"/accounts/{subaccount.pk}/billing/card/")
    assert start.status_code == 302
    html = client.get(start["Location"]).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    confirm_like_stripe_js(localstripe, client_secret.split("_secret_")[0], client_secret)
    return client.post(start["Location"] + "done/", follow=True)


def test_two_subaccounts_of_one_agency_get_two_stripe_customers(world, connected, localstripe, raw_stripe):
    # given agency A's two clients, each with its own account admin
    first, second = world.a.subaccounts
    clear_recorded_requests(localstripe)

    # when each adds a card
    for subaccount, admin in zip(world.a.subaccounts, world.a.account_admins, strict=True):
        response = _add_card(client_for(world.a, admin), subaccount, localstripe)
        assert "Your card is saved." in response.content.decode()

    # then each has its own customer on agency A's account, made for it (not the other's, not one shared)
    profile_1, profile_2 = profile_of(world.a, first), profile_of(world.a, second)
    assert profile_1.stripe_customer_id and profile_2.stripe_customer_id
    assert profile_1.stripe_customer_id != profile_2.stripe_customer_id
    for subaccount, profile in ((first, profile_1), (second, profile_2)):
        customer = raw_stripe.v1.customers.retrieve(profile.stripe_customer_id, options=on(ACCT_A))
        assert customer.name == subaccount.name
        assert customer.metadata["rebill_subaccount"] == str(subaccount.pk)
        assert customer.invoice_settings.default_payment_method == profile.card_payment_method_id
    assert len(raw_stripe.v1.customers.list(options=on(ACCT_A)).data) == 2
    # and the two creations carried two keys, each naming its own billing row
    keys = [r["idempotency_key"] for r in api_requests(localstripe)
            if r["method"] == "POST" and r["path"] == "/v1/customers"]
    assert keys == [f"customer:alpha:{profile_1.pk}:{ACCT_A}", f"customer:alpha:{profile_2.pk}:{ACCT_A}"]
    # and nothing of agency B's was made
    for subaccount_b in world.b.subaccounts:
        assert profile_of(world.b, subaccount_b) is None


def test_an_account_admin_of_client_2_cannot_open_or_finish_client_1s_card_setup(world, connected, localstripe,
                                                                                 raw_stripe):
    # given client 1's account admin started adding a card (confirmed with Stripe, not yet finished here)
    first, second = world.a.subaccounts
    owner = client_for(world.a, world.a.account_admins[0])
    start = owner.post(f"/accounts/{first.pk}/billing/card/")
    with tenant_context(world.a.agency):
        setup = CardSetup.objects.get(subaccount=first)
    html = owner.get(start["Location"]).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    confirm_like_stripe_js(localstripe, setup.setup_intent_id, client_secret)
    other = client_for(world.a, world.a.account_admins[1])
    clear_recorded_requests(localstripe)

    # when client 2's account admin opens that setup, and posts its done/, under their own sub-account's URL
    page = other.get(f"/accounts/{second.pk}/billing/card/{setup.pk}/")
    done = other.post(f"/accounts/{second.pk}/billing/card/{setup.pk}/done/")
    # (and under client 1's URL, where they are no member at all)
    page_1 = other.get(f"/accounts/{first.pk}/billing/card/{setup.pk}/")
    done_1 = other.post(f"/accounts/{first.pk}/billing/card/{setup.pk}/done/")
    # and agency B's client admin tries the same ids on agency B's domain
    page_b = client_for(world.b, world.b.account_admins[1]).get(
        f"/accounts/{world.b.subaccounts[1].pk}/billing/card/{setup.pk}/")

    # then every one is 404, and the setup's secret never shows
    assert [r.status_code for r in (page, done, page_1, done_1, page_b)] == [404] * 5
    assert client_secret not in page.content.decode()
    # and nothing happened: no Stripe call, the setup still open, no card on file, no audit row
    assert api_requests(localstripe) == []
    with tenant_context(world.a.agency):
        setup.refresh_from_db()
        assert setup.status == CardSetup.Status.STARTED and setup.completed_at is None
        assert not BillingProfile.objects.get(subaccount=first).has_card
        assert not BillingProfile.objects.filter(subaccount=second).exists()
        assert not AuditEntry.objects.filter(action=AuditEntry.Action.CARD_SET).exists()
    assert raw_stripe.v1.customers.list(options=on(ACCT_A)).data[0].invoice_settings.default_payment_method is None

    # and the owner can still finish it
    finished = owner.post(f"/accounts/{first.pk}/billing/card/{setup.pk}/done/", follow=True)
    assert "Your card is saved." in finished.content.decode()


def test_finding_stripe_customers_returns_only_the_matching_ones_with_their_details(world, connected, raw_stripe):
    from billing.selectors import CustomerMatch, stripe_customers_find
    from tests.billing.fixtures import ACCT_B, customer_with_card

    # given three customers on agency A's account (one with neither name nor email) and a look-alike on B's
    acme, _ = customer_with_card(raw_stripe, ACCT_A, name="Acme Dental Group", email="billing@acme-dental.test")
    zeta, _ = customer_with_card(raw_stripe, ACCT_A, name="Zeta Corp", email="pay@zeta.test")
    bare = raw_stripe.v1.customers.create(params={}, options=on(ACCT_A))
    customer_with_card(raw_stripe, ACCT_B, name="Zeta Corp", email="pay@zeta.test")

    with tenant_context(world.a.agency):
        # when the agency searches by email, by id and by nothing
        by_email = stripe_customers_find(query="  pay@zeta.test ")
        by_id = stripe_customers_find(query=bare.id)
        blank = stripe_customers_find(query="   ")

    # then only that customer comes back, with its name and email ("" where Stripe has none)
    assert by_email == [CustomerMatch(id=zeta.id, name="Zeta Corp", email="pay@zeta.test")]
    assert by_id == [CustomerMatch(id=bare.id, name="", email="")]
    assert blank == []
    assert acme.id not in {m.id for m in by_email + by_id}
