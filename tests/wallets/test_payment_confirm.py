"""authentication_required: the bank asks the card holder to confirm an off-session recharge. Company Billing offers
Stripe.js's confirmCardPayment with the PaymentIntent's client secret; once Stripe says it succeeded, the wallet is
credited once."""

import json
import re
import urllib.request
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from tests.billing.fixtures import ACCT_A, PUBLISHABLE_KEY, on
from tests.conftest import client_for
from tests.wallets.helpers import rebill, recharge_held_by_the_bank
from wallets.models import Charge, Wallet, WalletEntry
from wallets.services import charge_execute, wallet_ensure, wallet_recharge_start

pytestmark = pytest.mark.django_db

def _authenticate_like_stripe_js(base: str, client_secret: str) -> None:
    """What the Stripe.js mock's confirmCardPayment sends from the browser (publishable key, client secret)."""
    intent_id = client_secret.split("_secret_")[0]
    body = json.dumps({"key": PUBLISHABLE_KEY, "client_secret": client_secret}).encode()
    request = urllib.request.Request(f"{base}/v1/payment_intents/{intent_id}/_authenticate?success=true", data=body,
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - our own local server
        pass


def test_the_client_confirms_on_company_billing_and_the_wallet_is_credited_once(world, connected, raw_stripe,
                                                                                localstripe):
    with tenant_context(world.a.agency):
        # given a client whose bank asks for authentication, below the threshold
        client = world.a.subaccounts[0]
        wallet, charge = recharge_held_by_the_bank(client, raw=raw_stripe)
        assert (charge.status, charge.failure_code) == (Charge.Status.FAILED, "authentication_required")
        wallet.refresh_from_db()
        assert wallet.recharge_state == Wallet.RechargeState.ACTION_REQUIRED and wallet.next_retry_at is None

    # when the account admin opens Company Billing and confirms
    browser = client_for(world.a, world.a.account_admins[0])
    page = browser.get(f"/accounts/{client.pk}/billing/").content.decode()
    confirm_url = f"/accounts/{client.pk}/billing/confirm/{charge.pk}/"
    assert f'href="{confirm_url}"' in page
    html = browser.get(confirm_url).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    assert client_secret.startswith(charge.payment_intent_id + "_secret_")
    # (the other sub-account's admin cannot reach this charge)
    assert client_for(world.a, world.a.account_admins[1]).get(
        f"/accounts/{world.a.subaccounts[1].pk}/billing/confirm/{charge.pk}/").status_code == 404
    _authenticate_like_stripe_js(localstripe, client_secret)
    done = browser.post(confirm_url, follow=True)
    again = browser.post(confirm_url)

    # then Stripe's succeeded PaymentIntent credited the wallet once; no second PaymentIntent was made
    assert "Payment confirmed" in done.content.decode()
    assert again.status_code == 404
    with tenant_context(world.a.agency):
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("12") and wallet.recharge_state == Wallet.RechargeState.OK
        assert WalletEntry.objects.filter(wallet=wallet, charge_id=charge.pk).count() == 1
    assert len(raw_stripe.v1.payment_intents.list(options=on(ACCT_A)).data) == 1


def test_a_payment_that_needs_no_confirmation_cannot_be_confirmed(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        wallet = wallet_ensure(subaccount=client)
        charge = charge_execute(charge_id=wallet_recharge_start(wallet_id=wallet.pk).pk)
        assert charge.status == Charge.Status.SUCCEEDED
    browser = client_for(world.a, world.a.account_admins[0])
    assert browser.get(f"/accounts/{client.pk}/billing/confirm/{charge.pk}/").status_code == 404
    assert browser.post(f"/accounts/{client.pk}/billing/confirm/{charge.pk}/").status_code == 404
