"""As an agency admin would: Settings → Billing shows the agency's LC Phone balance with the platform, and the admin
adds the agency's card through Stripe.js's card element — on the platform's own Stripe account, whose webhook comes
back through the platform-account endpoint."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from agency_wallets.charging import agency_charge_execute, agency_wallet_recharge_start
from agency_wallets.models import AgencyCardSetup, AgencyCharge, AgencyWallet, AgencyWalletEntry
from devservices.localstripe_server import recorded_requests, register_webhook, unregister_webhook
from stripe_connect.models import WebhookEvent
from tests.agency_wallets.helpers import agency_wallet_at, agency_wallets_truncate
from tests.billing.fixtures import PLATFORM_WEBHOOK_SECRET, localstripe, localstripe_base, raw_stripe  # noqa: F401
from tests.browser.test_billing_flow import ADMIN_PASSWORD, sign_in
from tests.wallets.helpers import NEEDS_AUTHENTICATION

pytestmark = pytest.mark.browser


@pytest.fixture
def agency_wallet_in_debt(browser_agency, django_db_blocker, localstripe):  # noqa: F811
    with django_db_blocker.unblock():
        wallet = agency_wallet_at(browser_agency, "-2.5")
    yield wallet
    with django_db_blocker.unblock():
        agency_wallets_truncate()


@pytest.fixture
def platform_webhooks_to_live_server(live_server_url, localstripe):  # noqa: F811
    port = urlparse(live_server_url.format(host="localhost")).port
    webhook_id = register_webhook(localstripe, url=f"http://localhost:{port}/stripe/platform-webhook/",
                                  secret=PLATFORM_WEBHOOK_SECRET)
    yield
    unregister_webhook(localstripe, webhook_id)


def test_agency_admin_sees_its_balance_and_adds_its_card(page, live_server_url, browser_agency, agency_wallet_in_debt,
                                                         platform_webhooks_to_live_server, localstripe,  # noqa: F811
                                                         django_db_blocker):
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)

    # given the agency admin on Settings → Billing, owing the platform $2.50, with no card
    page.goto(f"{base}/agency/settings/billing/")
    sign_in(page, base, f"admin@{browser_agency.slug}.test", ADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="Settings → Billing")).to_be_visible()
    expect(page.get_by_test_id("agency-wallet-balance")).to_have_text("$-2.50")
    expect(page.get_by_test_id("agency-card-on-file")).to_contain_text("No card on file")

    # when they add card 4242 through the card element
    page.get_by_role("button", name="Add a card").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiration date").fill("12 / 2034")
    page.get_by_label("Security code").fill("123")
    page.get_by_label("ZIP").fill("10001")
    page.get_by_role("button", name="Save card").click()

    # then Settings → Billing shows the card, and still the balance
    expect(page.get_by_text("The agency's card is saved.")).to_be_visible()
    expect(page.get_by_test_id("agency-card-on-file")).to_contain_text("Visa ending in 4242, expires 12/2034")
    expect(page.get_by_test_id("agency-wallet-balance")).to_have_text("$-2.50")

    # and setup_intent.succeeded came back through the platform endpoint (no account), handled there
    deadline = time.monotonic() + 20
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        setup = AgencyCardSetup.objects.get(wallet__agency=browser_agency)
        while not WebhookEvent.objects.filter(event_type="setup_intent.succeeded", account_id="",
                                              status=WebhookEvent.Status.HANDLED,
                                              payload__data__object__id=setup.setup_intent_id).exists():
            assert time.monotonic() < deadline, list(WebhookEvent.objects.values_list("event_type", "status"))
            time.sleep(0.2)
        wallet = AgencyWallet.objects.get(agency=browser_agency)
        assert (wallet.card_last4, setup.status) == ("4242", AgencyCardSetup.Status.SUCCEEDED)

    # and no request our server made carried a Stripe-Account header: the platform's own account
    for request in recorded_requests(localstripe):
        if request["path"].startswith("/v1/"):
            assert request["stripe_account"] is None, request


@pytest.fixture
def agency_recharge_held_by_the_bank(browser_agency, django_db_blocker, raw_stripe):  # noqa: F811
    with django_db_blocker.unblock():
        wallet = agency_wallet_at(browser_agency, "2", raw=raw_stripe, card_number=NEEDS_AUTHENTICATION)
        charge = agency_charge_execute(charge_id=agency_wallet_recharge_start(wallet_id=wallet.pk).pk)
        assert charge.failure_code == "authentication_required"
    yield charge
    with django_db_blocker.unblock():
        agency_wallets_truncate()


def test_agency_admin_confirms_a_recharge_its_bank_held(page, live_server_url, browser_agency,
                                                        agency_recharge_held_by_the_bank, django_db_blocker):
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)

    # given the agency's recharge of $10 held by its bank for confirmation
    page.goto(f"{base}/agency/settings/billing/")
    sign_in(page, base, f"admin@{browser_agency.slug}.test", ADMIN_PASSWORD)
    expect(page.get_by_test_id("agency-recharge-failed")).to_contain_text("your bank asks you to confirm the payment")
    expect(page.get_by_test_id("agency-wallet-balance")).to_have_text("$2.00")

    # when the agency admin confirms it, and completes the bank's check
    page.get_by_role("link", name="Confirm the payment").click()
    expect(page.get_by_text("confirm the recharge of $10.00 for Web Test Agency.")).to_be_visible()
    page.wait_for_function("() => typeof Stripe !== 'undefined'")  # Stripe.js, not a plain form post
    page.get_by_role("button", name="Confirm payment").click()
    bank = page.get_by_role("button", name="Complete authentication")
    expect(bank).to_be_visible()
    bank.click()

    # then the balance is credited, once, and the banner is gone
    expect(page.get_by_text("Payment confirmed: $10.00 added to your LC Phone balance.")).to_be_visible()
    expect(page.get_by_test_id("agency-wallet-balance")).to_have_text("$12.00")
    expect(page.get_by_test_id("agency-recharge-failed")).to_have_count(0)
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        charge = AgencyCharge.objects.get(pk=agency_recharge_held_by_the_bank.pk)
        assert charge.status == AgencyCharge.Status.SUCCEEDED
        assert charge.entries.count() == 1


def test_agency_admin_reads_its_platform_wallet_totals_for_a_filter(page, live_server_url, browser_agency,
                                                                    agency_wallet_in_debt, django_db_blocker):
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        balance = agency_wallet_in_debt.balance
        for seq, amount in ((2, Decimal("10.00")), (3, Decimal("-1.25"))):
            balance += amount
            AgencyWalletEntry.objects.create(wallet=agency_wallet_in_debt, seq=seq, amount=amount,
                                             kind=AgencyWalletEntry.Kind.ADJUSTMENT, balance_after=balance,
                                             note=f"adjustment {seq}")
        AgencyWallet.objects.filter(pk=agency_wallet_in_debt.pk).update(balance=balance)
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)
    page.goto(f"{base}/agency/settings/billing/platform-wallet/")
    sign_in(page, base, f"admin@{browser_agency.slug}.test", ADMIN_PASSWORD)
    page.goto(f"{base}/agency/settings/billing/platform-wallet/")
    expect(page.get_by_test_id("platform-balance")).to_have_text("$6.25")
    # every entry: the totals of the filter equal the sum of its rows
    expect(page.get_by_test_id("total-count")).to_have_text("3")
    expect(page.get_by_test_id("total-credits")).to_have_text("$10.00")
    expect(page.get_by_test_id("total-debits")).to_have_text("$-3.75")
    expect(page.get_by_test_id("total-net")).to_have_text("$6.25")
    screenshots = Path(__file__).resolve().parents[2] / ".run" / "screenshots" / "usage_details"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshots / "07-platform-wallet-totals.png"), full_page=True)
    # a date range with nothing in it: zero totals, no rows
    tomorrow = timezone.now().date() + timedelta(days=1)
    page.get_by_label("From").fill(tomorrow.isoformat())
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("total-count")).to_have_text("0")
    expect(page.get_by_test_id("total-net")).to_have_text("$0.00")
    expect(page.get_by_text("No transactions match this filter.")).to_be_visible()
