"""Company Billing shows the wallet and adds balance (account admins only); Manage Client shows it read-only."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django_tenants.utils import tenant_context

from tests.billing.fixtures import ACCT_A, on
from tests.conftest import client_for
from tests.wallets.helpers import add_delta, rebill
from wallets.models import Charge, Wallet
from wallets.services import wallet_adjust, wallet_ensure, wallet_rate


def _setup(world, raw_stripe):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        add_delta(client, "2.00")
        wallet_rate(subaccount_id=client.pk)
        other = world.a.subaccounts[1]
        wallet_adjust(wallet=wallet_ensure(subaccount=other), amount=Decimal("77.77"), note="other's secret",
                      by="t")
        Wallet.objects.filter(subaccount=client).update(recharge_state=Wallet.RechargeState.FAILED,
                                                        last_failure_message="Your card was declined.")
    return client


def test_company_billing_shows_the_wallet_of_this_sub_account_only(world, connected, raw_stripe):
    client = _setup(world, raw_stripe)
    page = client_for(world.a, world.a.account_admins[0]).get(f"/accounts/{client.pk}/billing/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "$-2.10" in html and "Usage" in html and 'data-testid="recharge-failed"' in html
    assert "Add balance" in html
    assert "77.77" not in html and "other&#x27;s secret" not in html


def test_add_balance_charges_the_card_and_credits_the_wallet(world, connected, raw_stripe):
    client = _setup(world, raw_stripe)
    browser = client_for(world.a, world.a.account_admins[0])
    response = browser.post(f"/accounts/{client.pk}/billing/add-balance/", {"amount": "20.00"})
    assert response.status_code == 302
    with tenant_context(world.a.agency):
        assert Wallet.objects.get(subaccount=client).balance == Decimal("17.90")
    assert [pi.amount for pi in raw_stripe.v1.payment_intents.list(options=on(ACCT_A)).data] == [2000]
    # a bad amount changes nothing
    browser.post(f"/accounts/{client.pk}/billing/add-balance/", {"amount": "0.10"})
    with tenant_context(world.a.agency):
        assert Charge.objects.count() == 1


@pytest.mark.parametrize("who", ["account_user", "agency_admin", "other_account_admin", "other_agency"])
def test_add_balance_is_only_for_this_sub_accounts_admins(world, connected, raw_stripe, who):
    client = _setup(world, raw_stripe)
    browser = {
        "account_user": lambda: client_for(world.a, world.a.account_users[0]),
        "agency_admin": lambda: client_for(world.a, world.a.admin),
        "other_account_admin": lambda: client_for(world.a, world.a.account_admins[1]),
        "other_agency": lambda: client_for(world.b, world.b.account_admins[0]),
    }[who]()
    response = browser.post(f"/accounts/{client.pk}/billing/add-balance/", {"amount": "20.00"})
    # 404 in agency A; in agency B the same id names B's own client, which has no card: refused there
    assert response.status_code == (302 if who == "other_agency" else 404)
    for agency in (world.a.agency, world.b.agency):
        with tenant_context(agency):
            assert not Charge.objects.exists()
    assert raw_stripe.v1.payment_intents.list(options=on(ACCT_A)).data == []


def test_manage_client_shows_the_wallet_read_only(world, connected, raw_stripe):
    client = _setup(world, raw_stripe)
    with tenant_context(world.a.agency):
        url = reverse("subaccounts:manage", args=[client.pk])
    html = client_for(world.a, world.a.admin).get(url).content.decode()
    assert 'data-testid="wallet-balance"' in html and "$-2.10" in html
    assert 'data-testid="recharge-failed"' in html
    assert "add-balance" not in html
    assert "77.77" not in html
