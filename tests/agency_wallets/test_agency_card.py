"""Settings → Billing: an agency admin adds the agency's card on the platform's own Stripe account (not Connect),
with the card form Company Billing uses, and sees the agency's balance."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from agency_wallets.models import AgencyCardSetup, AgencyWallet
from devservices.localstripe_server import clear_recorded_requests
from subaccounts.models import AuditEntry
from tests.agency_wallets.helpers import agency_wallet_at
from tests.billing.fixtures import ACCT_A, api_requests, on
from tests.billing.helpers import confirm_like_stripe_js
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _add_card(client, localstripe, number="4242424242424242"):
    response = client.post("/agency/settings/billing/card/")
    assert response.status_code == 302
    page = client.get(response["Location"])
    html = page.content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    # the platform's own account: the card form names no connected account
    assert re.search(r'data-stripe-account="([^"]*)"', html).group(1) == ""
    confirm_like_stripe_js(localstripe, client_secret.split("_secret_")[0], client_secret, number)
    return client.post(response["Location"] + "done/", follow=True)


def test_agency_admin_adds_the_agencys_card_on_the_platform_account(world, connected, localstripe, raw_stripe):
    # given agency A's admin, agency A connected to its own Stripe account (which must not be used here)
    client = client_for(world.a, world.a.admin)
    clear_recorded_requests(localstripe)

    # when they add a card on Settings → Billing
    response = _add_card(client, localstripe)
    ours = [r for r in api_requests(localstripe) if not r["path"].endswith("/confirm")]

    # then the card shows, with the balance
    html = response.content.decode()
    assert "The agency&#x27;s card is saved." in html or "The agency's card is saved." in html
    assert "Visa" in html and "4242" in html and "12/2034" in html
    assert 'data-testid="agency-wallet-balance">$0.00' in html
    connection.set_schema_to_public()
    wallet = AgencyWallet.objects.get(agency=world.a.agency)
    assert (wallet.card_brand, wallet.card_last4, wallet.card_exp_month) == ("visa", "4242", 12)
    # and it is the default card of the agency's customer on the platform's account, not on agency A's account
    customer = raw_stripe.v1.customers.retrieve(wallet.stripe_customer_id)
    assert customer.invoice_settings.default_payment_method == wallet.card_payment_method_id
    assert raw_stripe.v1.customers.list(options=on(ACCT_A)).data == []
    # and no request our server made carried a Stripe-Account; every write carried a key of ours
    assert ours and all(r["stripe_account"] is None for r in ours)
    assert all(r["idempotency_key"].startswith("agency-") for r in ours if r["method"] == "POST")
    # and the change is in agency A's audit log, agency-wide
    with tenant_context(world.a.agency):
        assert AuditEntry.objects.filter(subaccount=None, action=AuditEntry.Action.CARD_SET,
                                         actor=world.a.admin.email).count() == 1
    # and agency B has no wallet, no card
    connection.set_schema_to_public()
    assert not AgencyWallet.objects.filter(agency=world.b.agency).exists()


def test_replacing_the_agencys_card_detaches_the_old_one(world, connected, localstripe, raw_stripe):
    client = client_for(world.a, world.a.admin)
    _add_card(client, localstripe)
    connection.set_schema_to_public()
    old = AgencyWallet.objects.get(agency=world.a.agency).card_payment_method_id

    _add_card(client, localstripe, number="5555555555554444")

    connection.set_schema_to_public()
    wallet = AgencyWallet.objects.get(agency=world.a.agency)
    assert wallet.card_last4 == "4444" and wallet.card_payment_method_id != old
    assert raw_stripe.v1.payment_methods.retrieve(old).customer is None


def test_the_browser_saying_done_is_not_believed(world, connected, localstripe):
    client = client_for(world.a, world.a.admin)
    started = client.post("/agency/settings/billing/card/")
    response = client.post(started["Location"] + "done/", follow=True)
    assert "Stripe has not confirmed this card" in response.content.decode()
    connection.set_schema_to_public()
    assert not AgencyWallet.objects.get(agency=world.a.agency).has_card
    assert AgencyCardSetup.objects.get().status == AgencyCardSetup.Status.STARTED


def test_only_agency_admins_and_only_their_own_agencys_setups(world, connected, localstripe):
    # given a setup agency B's admin started
    b_admin = client_for(world.b, world.b.admin)
    started = b_admin.post("/agency/settings/billing/card/")
    setup_path = started["Location"]
    # then agency A's admin cannot see or finish it (on A's domain the id is not A's)
    a_admin = client_for(world.a, world.a.admin)
    assert a_admin.get(setup_path).status_code == 404
    assert a_admin.post(setup_path + "done/").status_code == 404
    # and an agency user or a client's account admin gets nothing of Settings → Billing
    for user in (world.a.agency_user, world.a.account_admins[0]):
        client = client_for(world.a, user)
        assert client.get("/agency/settings/billing/").status_code in (403, 404)
        assert client.post("/agency/settings/billing/card/").status_code in (403, 404)
        assert client.post("/agency/settings/billing/auto-recharge/", {"amount": "25", "threshold": "5"}
                           ).status_code in (403, 404)
    connection.set_schema_to_public()
    assert not AgencyWallet.objects.filter(agency=world.a.agency).exists()


def test_auto_recharge_defaults_to_10_below_10_and_is_edited_with_the_client_wallets_rules(world, connected):
    client = client_for(world.a, world.a.admin)
    html = client.get("/agency/settings/billing/").content.decode()
    assert 'value="10.00"' in html

    # bad input: a clear error, nothing changed
    for bad, field in (({"amount": "0.10", "threshold": "5"}, "amount"),
                       ({"amount": "25", "threshold": "-1"}, "threshold"),
                       ({"amount": "20000", "threshold": "5"}, "amount")):
        response = client.post("/agency/settings/billing/auto-recharge/", bad)
        assert response.status_code == 400 and "field-error" in response.content.decode(), (bad, field)
    connection.set_schema_to_public()
    wallet = AgencyWallet.objects.filter(agency=world.a.agency).first()
    assert wallet is None or (wallet.auto_recharge_amount, wallet.auto_recharge_threshold) == (10, 10)

    response = client.post("/agency/settings/billing/auto-recharge/", {"amount": "25.00", "threshold": "5.50"})
    assert response.status_code == 302
    connection.set_schema_to_public()
    wallet = AgencyWallet.objects.get(agency=world.a.agency)
    assert (wallet.auto_recharge_amount, wallet.auto_recharge_threshold) == (Decimal("25"), Decimal("5.5"))
    with tenant_context(world.a.agency):
        entry = AuditEntry.objects.get(subaccount=None, action=AuditEntry.Action.AUTO_RECHARGE_CHANGED)
        assert entry.before["amount"] == "10.00" and entry.after == {"wallet": "platform", "amount": "25.00",
                                                                     "threshold": "5.50"}
    connection.set_schema_to_public()
    assert not AgencyWallet.objects.filter(agency=world.b.agency).exists()


def test_the_page_shows_the_balance_the_failure_banner_and_a_see_details_spot(world, connected, raw_stripe):
    wallet = agency_wallet_at(world.a.agency, "-3.5", raw=raw_stripe)
    AgencyWallet.objects.filter(pk=wallet.pk).update(recharge_state=AgencyWallet.RechargeState.FAILED,
                                                     last_failure_code="insufficient_funds",
                                                     last_failure_message="Your card has insufficient funds.")
    html = client_for(world.a, world.a.admin).get("/agency/settings/billing/").content.decode()
    assert 'data-testid="agency-wallet-balance">$-3.50' in html
    assert 'data-testid="agency-recharge-failed"' in html and "insufficient_funds" in html
    assert 'data-testid="agency-wallet-see-details"' in html
    assert 'href="/agency/settings/billing/platform-wallet/"' in html, "See details opens the wallet's transactions"
    # agency B's page shows none of it
    html_b = client_for(world.b, world.b.admin).get("/agency/settings/billing/").content.decode()
    assert "insufficient_funds" not in html_b and "$-3.50" not in html_b
