"""Company Billing: only the sub-account's account admins add, replace or remove its card."""

import re

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import BillingProfile, CardSetup
from devservices.localstripe_server import clear_recorded_requests
from rebilling.models import SubAccountRebilling
from subaccounts.models import AuditEntry, Membership
from tests.billing.fixtures import ACCT_A, api_requests, on
from tests.billing.helpers import confirm_like_stripe_js, profile_of
from tests.conftest import client_for


def _start_and_confirm(client, world_a, subaccount, localstripe, number="4242424242424242", exp_month=12):
    response = client.post(f"/accounts/{subaccount.pk}/billing/card/")
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    assert re.search(r'data-stripe-account="([^"]+)"', html).group(1) == ACCT_A
    assert f'src="{localstripe}/js.stripe.com/v3/"' in html
    setup_intent_id = client_secret.split("_secret_")[0]
    confirm_like_stripe_js(localstripe, setup_intent_id, client_secret, number, exp_month)
    done = response["Location"] + "done/"
    return client.post(done, follow=True)


def test_account_admin_adds_a_card_on_the_agencys_account(world, connected, localstripe, raw_stripe):
    # given agency A's account admin of client 1
    subaccount = world.a.subaccounts[0]
    client = client_for(world.a, world.a.account_admins[0])
    clear_recorded_requests(localstripe)

    # when they add card 4242 (the browser confirms with Stripe.js; our server then checks with Stripe)
    response = _start_and_confirm(client, world.a, subaccount, localstripe)
    ours = [r for r in api_requests(localstripe) if not r["path"].endswith("/confirm")]

    # then the card shows as brand, last 4 and expiry
    html = response.content.decode()
    assert "Your card is saved." in html
    assert "Visa" in html and "4242" in html and "12/2034" in html
    profile = profile_of(world.a, subaccount)
    assert (profile.card_brand, profile.card_last4, profile.card_exp_month, profile.card_exp_year) == (
        "visa", "4242", 12, 2034)
    # and the card is the customer's default on agency A's account, not anywhere else
    customer = raw_stripe.v1.customers.retrieve(profile.stripe_customer_id, options=on(ACCT_A))
    assert customer.invoice_settings.default_payment_method == profile.card_payment_method_id
    assert raw_stripe.v1.customers.list(options=on(None)).data == []
    # and every request our server made carried agency A's account; every write a key of ours
    assert ours and all(r["stripe_account"] == ACCT_A for r in ours)
    assert all(r["idempotency_key"] and ":alpha:" in r["idempotency_key"] for r in ours if r["method"] == "POST")
    # and nothing of agency B's changed
    for subaccount_b in world.b.subaccounts:
        assert profile_of(world.b, subaccount_b) is None


def test_replacing_the_card_detaches_the_old_one(world, connected, localstripe, raw_stripe):
    subaccount = world.a.subaccounts[0]
    client = client_for(world.a, world.a.account_admins[0])
    _start_and_confirm(client, world.a, subaccount, localstripe)
    old = profile_of(world.a, subaccount).card_payment_method_id

    response = _start_and_confirm(client, world.a, subaccount, localstripe, number="5555555555554444", exp_month=3)

    assert "4444" in response.content.decode() and "03/2034" in response.content.decode()
    profile = profile_of(world.a, subaccount)
    assert profile.card_last4 == "4444" and profile.card_exp_month == 3
    assert raw_stripe.v1.payment_methods.retrieve(old, options=on(ACCT_A)).customer is None
    cards = raw_stripe.v1.customers.payment_methods.list(profile.stripe_customer_id, options=on(ACCT_A)).data
    assert [c.id for c in cards] == [profile.card_payment_method_id]


def test_the_browser_saying_done_is_not_believed(world, connected, localstripe):
    # given a card setup the browser never confirmed with Stripe
    subaccount = world.a.subaccounts[0]
    client = client_for(world.a, world.a.account_admins[0])
    start = client.post(f"/accounts/{subaccount.pk}/billing/card/")

    # when the browser posts "done" anyway
    response = client.post(start["Location"] + "done/", follow=True)

    # then no card is on file
    assert "Stripe has not confirmed this card" in response.content.decode()
    assert not profile_of(world.a, subaccount).has_card


def test_an_agency_admin_cannot_add_a_card(world, connected, localstripe, raw_stripe):
    # given agency A's admin (not an account admin of the client)
    subaccount = world.a.subaccounts[0]
    client = client_for(world.a, world.a.admin)

    # when they open Company Billing or post to start or finish a card setup
    assert client.get(f"/accounts/{subaccount.pk}/billing/").status_code == 404
    assert client.post(f"/accounts/{subaccount.pk}/billing/card/").status_code == 404
    assert client.post(f"/accounts/{subaccount.pk}/billing/card/1/done/").status_code == 404
    assert client.post(f"/accounts/{subaccount.pk}/billing/card/remove/").status_code == 404

    # then nothing was made or attached, here or at Stripe
    with tenant_context(world.a.agency):
        assert not CardSetup.objects.exists()
        assert not BillingProfile.objects.exists()
    assert api_requests(localstripe) == []
    assert raw_stripe.v1.customers.list(options=on(ACCT_A)).data == []
    assert raw_stripe.v1.setup_intents.list(options=on(ACCT_A)).data == []


def test_agency_staff_with_a_membership_row_still_cannot_add_a_card(world, connected, localstripe, raw_stripe):
    # DESIGN §13: agency staff are never account admins of their clients, even with a membership row (one
    # written before the rule, or by hand): only the client's own people add its card.
    subaccount = world.a.subaccounts[1]
    with tenant_context(world.a.agency):
        Membership.objects.create(subaccount=subaccount, user=world.a.admin, role=Membership.Role.ACCOUNT_ADMIN)
    client = client_for(world.a, world.a.admin)

    assert client.get(f"/accounts/{subaccount.pk}/billing/").status_code == 404
    assert client.post(f"/accounts/{subaccount.pk}/billing/card/").status_code == 404

    with tenant_context(world.a.agency):
        assert not CardSetup.objects.exists()
    assert raw_stripe.v1.customers.list(options=on(ACCT_A)).data == []
    # nor is it emailed payment links as if it were the client's
    from billing.selectors import manage_client_billing
    with tenant_context(world.a.agency):
        assert world.a.admin.email not in manage_client_billing(subaccount=subaccount).account_admin_emails


@pytest.mark.parametrize("who", ["account_user", "other_client_admin", "other_agency_admin"])
def test_company_billing_is_for_that_clients_account_admins_only(world, connected, who):
    subaccount = world.a.subaccounts[0]
    client = {
        "account_user": lambda: client_for(world.a, world.a.account_users[0]),
        "other_client_admin": lambda: client_for(world.a, world.a.account_admins[1]),
        "other_agency_admin": lambda: client_for(world.b, world.b.admin),
    }[who]()
    assert client.get(f"/accounts/{subaccount.pk}/billing/").status_code == 404
    assert client.post(f"/accounts/{subaccount.pk}/billing/card/").status_code == 404


def test_the_nav_shows_company_billing_to_account_admins_only(world, connected):
    subaccount = world.a.subaccounts[0]
    url = f"/accounts/{subaccount.pk}/billing/"
    assert url in client_for(world.a, world.a.account_admins[0]).get(f"/accounts/{subaccount.pk}/").content.decode()
    assert url not in client_for(world.a, world.a.account_users[0]).get(
        f"/accounts/{subaccount.pk}/").content.decode()
    assert url not in client_for(world.a, world.a.admin).get("/agency/subaccounts/").content.decode()


def test_the_last_card_cannot_be_removed_while_rebilling_is_on(world, connected, localstripe, raw_stripe):
    # given a card on file and rebilling on
    subaccount = world.a.subaccounts[0]
    client = client_for(world.a, world.a.account_admins[0])
    _start_and_confirm(client, world.a, subaccount, localstripe)
    with tenant_context(world.a.agency):
        SubAccountRebilling.objects.update_or_create(subaccount=subaccount, defaults={"switched_on": True,
                                                                                     "switched_on_at": timezone.now()})
    card_id = profile_of(world.a, subaccount).card_payment_method_id

    # when the account admin removes it, then it is refused and the card stays, here and at Stripe
    response = client.post(f"/accounts/{subaccount.pk}/billing/card/remove/", follow=True)
    assert "cannot be removed while phone rebilling is on" in response.content.decode()
    assert profile_of(world.a, subaccount).card_payment_method_id == card_id
    assert raw_stripe.v1.payment_methods.retrieve(card_id, options=on(ACCT_A)).customer is not None

    # and once rebilling is off, Remove card first asks for confirmation, which changes nothing
    with tenant_context(world.a.agency):
        SubAccountRebilling.objects.filter(subaccount=subaccount).update(switched_on=False)
    page = client.get(f"/accounts/{subaccount.pk}/billing/").content.decode()
    assert f'href="/accounts/{subaccount.pk}/billing/card/remove/"' in page
    confirm = client.get(f"/accounts/{subaccount.pk}/billing/card/remove/")
    assert confirm.status_code == 200 and "Remove this card?" in confirm.content.decode()
    assert profile_of(world.a, subaccount).card_payment_method_id == card_id
    assert raw_stripe.v1.payment_methods.retrieve(card_id, options=on(ACCT_A)).customer is not None
    # (nobody else reaches that page: the agency's admin, or the other client's account admin)
    assert client_for(world.a, world.a.admin).get(f"/accounts/{subaccount.pk}/billing/card/remove/").status_code == 404
    assert client_for(world.a, world.a.account_admins[1]).get(
        f"/accounts/{subaccount.pk}/billing/card/remove/").status_code == 404

    # and once confirmed, it is removed
    response = client.post(f"/accounts/{subaccount.pk}/billing/card/remove/", follow=True)
    assert "Card removed." in response.content.decode()
    assert not profile_of(world.a, subaccount).has_card
    assert raw_stripe.v1.payment_methods.retrieve(card_id, options=on(ACCT_A)).customer is None


def test_company_billing_refuses_clearly_while_the_agency_has_no_stripe(world, db, localstripe):
    subaccount = world.a.subaccounts[0]
    client = client_for(world.a, world.a.account_admins[0])
    told = "Alpha Agency has not finished setting up card payments yet"

    # the page says so up front, in the client's terms, and offers no button that would fail
    page = client.get(f"/accounts/{subaccount.pk}/billing/").content.decode()
    assert told in page and "Add a card</button>" not in page and "Settings → Stripe" not in page

    response = client.post(f"/accounts/{subaccount.pk}/billing/card/", follow=True)

    html = response.content.decode()
    assert told in html and "Settings → Stripe" not in html
    assert api_requests(localstripe) == []
    with tenant_context(world.a.agency):
        assert not CardSetup.objects.exists()


def test_each_agencys_requests_carry_its_own_account_and_never_the_others(world, connected, localstripe):
    # given both agencies' account admins add a card, one after the other
    recorded = {}
    for agency_world in (world.a, world.b):
        clear_recorded_requests(localstripe)
        response = _add_card(client_for(agency_world, agency_world.account_admins[0]), agency_world.subaccounts[0],
                             localstripe)
        assert "Your card is saved." in response.content.decode()
        recorded[agency_world.agency.slug] = [r for r in api_requests(localstripe)
                                              if not r["path"].endswith("/confirm")]

    # then each agency's requests carried its own account only
    assert recorded["alpha"] and {r["stripe_account"] for r in recorded["alpha"]} == {ACCT_A}
    assert recorded["bravo"] and {r["stripe_account"] for r in recorded["bravo"]} == {connected.b.account_id}
    # and each card lives on its own agency's account
    assert profile_of(world.a, world.a.subaccounts[0]).stripe_account_id == ACCT_A
    assert profile_of(world.b, world.b.subaccounts[0]).stripe_account_id == connected.b.account_id


def _add_card(client, subaccount, localstripe):
    start = client.post(f"/accounts/{subaccount.pk}/billing/card/")
    html = client.get(start["Location"]).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    confirm_like_stripe_js(localstripe, client_secret.split("_secret_")[0], client_secret)
    return client.post(start["Location"] + "done/", follow=True)


def test_card_changes_are_audited(world, connected, localstripe):
    subaccount = world.a.subaccounts[0]
    _start_and_confirm(client_for(world.a, world.a.account_admins[0]), world.a, subaccount, localstripe)

    with tenant_context(world.a.agency):
        entry = AuditEntry.objects.get(subaccount=subaccount, action=AuditEntry.Action.CARD_SET)
    assert entry.actor == world.a.account_admins[0].email
    assert entry.before["card_last4"] == "" and entry.after["card_last4"] == "4242"
