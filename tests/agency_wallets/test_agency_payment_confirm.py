"""authentication_required on the agency's own recharge: the bank asks the agency to confirm an off-session payment.
Settings → Billing offers Stripe.js's confirmCardPayment with the PaymentIntent's client secret (platform account);
once Stripe says it succeeded, the agency's wallet is credited once."""

import re
from decimal import Decimal

import pytest
from django.core import mail

from agency_wallets.charging import agency_charge_execute, agency_wallet_recharge_start
from agency_wallets.models import AgencyCharge, AgencyWallet, AgencyWalletEntry
from tests.agency_wallets.helpers import agency_wallet_at, platform_intents
from tests.conftest import client_for
from tests.wallets.helpers import NEEDS_AUTHENTICATION
from tests.wallets.test_payment_confirm import _authenticate_like_stripe_js

pytestmark = pytest.mark.django_db


def test_the_agency_admin_confirms_on_settings_billing_and_the_wallet_is_credited_once(
        world, connected, raw_stripe, localstripe, django_capture_on_commit_callbacks):
    # given the agency's card needs its bank's confirmation, and its wallet is below the threshold
    wallet = agency_wallet_at(world.a.agency, "2", raw=raw_stripe, card_number=NEEDS_AUTHENTICATION)
    with django_capture_on_commit_callbacks(execute=True):
        charge = agency_charge_execute(charge_id=agency_wallet_recharge_start(wallet_id=wallet.pk).pk)
    assert (charge.status, charge.failure_code) == (AgencyCharge.Status.FAILED, "authentication_required")
    wallet.refresh_from_db()
    assert wallet.recharge_state == AgencyWallet.RechargeState.ACTION_REQUIRED and wallet.next_retry_at is None
    [email] = mail.outbox
    assert "open Settings → Billing and confirm it" in email.body

    # when the agency admin opens Settings → Billing and confirms
    browser = client_for(world.a, world.a.admin)
    page = browser.get("/agency/settings/billing/").content.decode()
    confirm_url = f"/agency/settings/billing/confirm/{charge.pk}/"
    assert f'href="{confirm_url}"' in page
    html = browser.get(confirm_url).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    assert client_secret.startswith(charge.payment_intent_id + "_secret_")
    assert 'data-stripe-account=""' in html  # the platform's own account
    # (an agency user, and another agency's admin, cannot reach this charge)
    assert client_for(world.a, world.a.agency_user).get(confirm_url).status_code in (403, 404)
    assert client_for(world.b, world.b.admin).get(confirm_url).status_code == 404
    # (nor can anyone say it is done before Stripe says so)
    early = browser.post(confirm_url, follow=True)
    assert "The payment is not confirmed yet." in early.content.decode()
    _authenticate_like_stripe_js(localstripe, client_secret)
    done = browser.post(confirm_url, follow=True)
    again = browser.post(confirm_url)

    # then Stripe's succeeded PaymentIntent credited the wallet once; no second PaymentIntent was made
    assert "Payment confirmed: $10.00 added to your LC Phone balance." in done.content.decode()
    assert again.status_code == 404
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("12") and wallet.recharge_state == AgencyWallet.RechargeState.OK
    assert AgencyWalletEntry.objects.filter(wallet=wallet, charge_id=charge.pk).count() == 1
    assert len(platform_intents(raw_stripe)) == 1


def test_a_payment_that_needs_no_confirmation_cannot_be_confirmed(world, connected, raw_stripe):
    wallet = agency_wallet_at(world.a.agency, "2", raw=raw_stripe)
    charge = agency_charge_execute(charge_id=agency_wallet_recharge_start(wallet_id=wallet.pk).pk)
    assert charge.status == AgencyCharge.Status.SUCCEEDED
    assert client_for(world.a, world.a.admin).get(f"/agency/settings/billing/confirm/{charge.pk}/").status_code == 404
