"""As people would: the agency asks for a card, the client's account admin adds it through Stripe.js.

A real localstripe (our launcher) serves the API and its fake Stripe.js; its webhooks come back to the live
server's platform domain, so `setup_intent.succeeded` really travels through our endpoint.
"""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import urlparse

import pytest
from django.core import mail
from django.db import connection
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from billing.models import BillingProfile, CardSetup
from devservices.localstripe_server import recorded_requests, register_webhook, unregister_webhook
from people.models import User
from people.services import user_create
from stripe_connect.models import ConnectedAccount, WebhookEvent
from subaccounts.models import Membership
from subaccounts.services import membership_add, subaccount_create
from tests.billing.fixtures import WEBHOOK_SECRET, localstripe, localstripe_base  # noqa: F401

pytestmark = pytest.mark.browser

ADMIN_PASSWORD = "Browser-admin-pw-1"
OWNER_PASSWORD = "Crumb-Vault-Pw-2026"


def sign_in(page, base: str, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def billing_client(browser_agency, django_db_blocker, localstripe):  # noqa: F811
    """The browser agency connected to its own Stripe account, with a client and the client's account admin."""
    account_id = f"acct_1Web{uuid.uuid4().hex[:12]}"
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        ConnectedAccount.objects.create(agency=browser_agency, account_id=account_id)
        with tenant_context(browser_agency):
            admin = User.objects.get(role=User.Role.AGENCY_ADMIN)
            subaccount = subaccount_create(name=f"Lakeside Bakery {uuid.uuid4().hex[:4]}", by=admin)
            # The client's own person, with the password they would have set from their invitation.
            owner = user_create(email=f"owner-{subaccount.pk}@lakeside.test", full_name="Lena",
                                password=OWNER_PASSWORD, role=User.Role.CLIENT)
            membership_add(subaccount=subaccount, email=owner.email, full_name="Lena",
                           role=Membership.Role.ACCOUNT_ADMIN, by=admin)
        connection.set_schema_to_public()
    yield account_id, subaccount, f"owner-{subaccount.pk}@lakeside.test"
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        ConnectedAccount.objects.filter(account_id=account_id).delete()


@pytest.fixture
def stripe_webhooks_to_live_server(live_server_url, localstripe):  # noqa: F811
    port = urlparse(live_server_url.format(host="localhost")).port
    webhook_id = register_webhook(localstripe, url=f"http://localhost:{port}/stripe/webhook/", secret=WEBHOOK_SECRET)
    yield
    unregister_webhook(localstripe, webhook_id)


def test_payment_link_to_card_on_file(page, live_server_url, browser_agency, agency_db, billing_client,
                                      stripe_webhooks_to_live_server, localstripe, django_db_blocker):  # noqa: F811
    account_id, subaccount, owner_email = billing_client
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)
    mail.outbox.clear()

    # given the agency admin on Manage Client, with no card on file yet
    page.goto(f"{base}/agency/subaccounts/{subaccount.pk}/")
    sign_in(page, base, f"admin@{browser_agency.slug}.test", ADMIN_PASSWORD)
    billing = page.locator("#billing")
    expect(billing).to_contain_text("No card on file")

    # when they send a payment link
    billing.get_by_role("button", name="Send payment link").click()
    expect(page.get_by_text(f"Payment link sent to {owner_email}.")).to_be_visible()
    [message] = mail.outbox
    assert message.to == [owner_email]
    link = re.search(r"http://\S+/billing/payment-link/\S+/", message.body).group(0)
    page.get_by_role("button", name="Sign out").click()

    # and the account admin opens it, signs in, and adds card 4242 through Stripe.js's card element
    page.goto(link)
    sign_in(page, base, owner_email, OWNER_PASSWORD)
    page.get_by_role("button", name="Continue to Company Billing").click()
    expect(page.get_by_role("heading", name=f"Company Billing: {subaccount.name}")).to_be_visible()
    expect(page.get_by_test_id("card-on-file")).to_contain_text("No card on file")
    page.get_by_role("button", name="Add a card").click()

    # (an empty or half-typed card gets a sentence from the card element, and nothing reaches Stripe)
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("alert")).to_have_text("Your card number is incomplete.")
    page.get_by_label("Card number").press_sequentially("4242 4242 4242 4241")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("alert")).to_have_text("Your card number is invalid.")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("alert")).to_have_text("Your card's expiration date is incomplete.")
    assert not [r for r in recorded_requests(localstripe) if r["path"].endswith("/confirm")]

    # (as people type it: spaces in the number, a 4-digit year)
    page.get_by_label("Expiration date").fill("12 / 2034")
    page.get_by_label("Security code").fill("123")
    page.get_by_label("ZIP").fill("10001")
    page.get_by_role("button", name="Save card").click()

    # then Company Billing shows the card
    expect(page.get_by_text("Your card is saved.")).to_be_visible()
    expect(page.get_by_test_id("card-on-file")).to_contain_text("Visa ending in 4242, expires 12/2034")

    # and setup_intent.succeeded came back through the webhook and was handled in this agency's schema
    deadline = time.monotonic() + 20
    with agency_db:
        while not WebhookEvent.objects.filter(event_type="setup_intent.succeeded", account_id=account_id,
                                              status=WebhookEvent.Status.HANDLED).exists():
            assert time.monotonic() < deadline, list(WebhookEvent.objects.values_list("event_type", "status"))
            time.sleep(0.2)
        event = WebhookEvent.objects.get(event_type="setup_intent.succeeded", account_id=account_id)
        assert event.agency_id == browser_agency.pk
        setup = CardSetup.objects.get(subaccount=subaccount)
        assert setup.status == CardSetup.Status.SUCCEEDED
        assert event.payload["data"]["object"]["id"] == setup.setup_intent_id
        profile = BillingProfile.objects.get(subaccount=subaccount)
        assert (profile.card_last4, profile.card_exp_month, profile.card_exp_year) == ("4242", 12, 2034)

    # and every Stripe request about this client's money carried the agency's account (the one without a
    # header is Stripe.js's own confirm, which authenticates with the intent's client secret)
    for request in recorded_requests(localstripe):
        if request["path"].startswith("/v1/") and not request["path"].endswith("/confirm"):
            assert request["stripe_account"] == account_id, request

    # and the agency admin sees the card on Manage Client, read-only
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{base}/agency/subaccounts/{subaccount.pk}/")
    sign_in(page, base, f"admin@{browser_agency.slug}.test", ADMIN_PASSWORD)
    expect(page.locator("#billing")).to_contain_text("Visa ending in 4242, expires 12/2034")
    expect(page.locator("#billing").get_by_role("button", name="Add a card")).to_have_count(0)

    # and the link, spent by the card saved through it, says so and points to Company Billing
    page.get_by_role("button", name="Sign out").click()
    page.goto(link)
    expect(page.get_by_role("heading", name="The card is saved")).to_be_visible()
    expect(page.get_by_role("link", name="Company Billing").last).to_have_attribute(
        "href", f"/accounts/{subaccount.pk}/billing/")


def test_an_agency_admin_has_no_company_billing(page, live_server_url, browser_agency, billing_client):
    _, subaccount, _ = billing_client
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)
    page.goto(f"{base}/login/")
    sign_in(page, base, f"admin@{browser_agency.slug}.test", ADMIN_PASSWORD)
    expect(page.locator(".mainnav")).not_to_contain_text("Company Billing")
    response = page.goto(f"{base}/accounts/{subaccount.pk}/billing/")
    assert response.status == 404
