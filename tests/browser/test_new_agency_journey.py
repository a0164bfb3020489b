"""A new agency's first day, as people would click it: platform staff create the agency, its admin
accepts the invitation, connects Stripe through the local authorize page, adds a client and asks for a
card; the client's account admin accepts their own invitation and adds 4242 4242 4242 4242, 12 / 2030.

Screenshots of each step are saved under .run/screenshots/new_agency_journey/ (git-ignored).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.core import mail
from django.db import connection
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from agencies.models import Agency
from billing.models import BillingProfile
from people.models import User
from stripe_connect.models import ConnectedAccount
from tests.billing.fixtures import localstripe, localstripe_base  # noqa: F401

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".run" / "screenshots" / "new_agency_journey"
STAFF_EMAIL = "ops@platform.test"
STAFF_PASSWORD = "Platform-ops-pw-1"
ADMIN_PASSWORD = "Northwind-admin-pw-1"
OWNER_PASSWORD = "Harbor-owner-pw-2"
# The longest name the platform accepts: the header must still fit the screen.
AGENCY_NAME = ("Northwind Growth and Performance Marketing Partners of the Greater Lakeside and Harbor "
               "Metropolitan Area Incorporated Co")
assert len(AGENCY_NAME) == 120


class Shots:
    def __init__(self, page) -> None:
        self.page = page
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob("*.png"):
            old.unlink()

    def __call__(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.count:02d}-{name}.png"), full_page=True)


def sign_in(page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def last_link(pattern: str, to: str) -> str:
    """The path of the newest development email to `to` whose body has a link matching `pattern`."""
    for message in reversed(mail.outbox):
        found = re.search(pattern, message.body)
        if to in message.to and found:
            return found.group(1)
    raise AssertionError(f"no email to {to} with {pattern}: {[m.subject for m in mail.outbox]}")


def assert_fits_the_screen(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the screen"


@pytest.fixture
def platform_staff(world, django_db_blocker) -> Iterator[str]:
    slug = f"nw-{uuid.uuid4().hex[:6]}"
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        if not User.objects.filter(email=STAFF_EMAIL).exists():  # the test database goes away with the session
            User.objects.create_superuser(STAFF_EMAIL, STAFF_PASSWORD)
    yield slug
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        for agency in Agency.objects.filter(slug=slug):
            ConnectedAccount.objects.filter(agency=agency).delete()
            agency.delete(force_drop=True)


def test_a_new_agency_connects_stripe_and_its_client_adds_a_card(
        page, live_server_url, platform_staff, localstripe, django_db_blocker):  # noqa: F811
    slug = platform_staff
    platform = live_server_url.format(host="localhost")
    port = urlparse(platform).port
    base = f"http://{slug}.localhost:{port}"
    admin_email, owner_email = f"boss@{slug}.test", f"owner@{slug}-harbor.test"
    shot = Shots(page)
    page.set_viewport_size({"width": 1280, "height": 800})
    mail.outbox.clear()

    # Platform staff create the agency in the platform admin, its admin without a password (invited)
    page.goto(f"{platform}/admin/")
    sign_in(page, STAFF_EMAIL, STAFF_PASSWORD)
    page.goto(f"{platform}/admin/agencies/agency/create/")
    fields = page.locator("#agency-create .aligned").locator("input:not([type=hidden]), select")
    lefts = {round(fields.nth(i).bounding_box()["x"]) for i in range(fields.count())}
    assert fields.count() >= 7 and len(lefts) == 1, f"fields start at {sorted(lefts)}"
    page.get_by_label("Name:", exact=True).fill(AGENCY_NAME)
    page.get_by_label("Slug").fill(slug)
    page.get_by_label("Plan").select_option("pro")
    page.get_by_label("First agency admin's email").fill(admin_email)
    shot("platform-create-agency")
    page.get_by_role("button", name="Create agency").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Agency {AGENCY_NAME} created.")
    assert_fits_the_screen(page)
    shot("platform-agency-created")

    # Its admin accepts the invitation (development emails: locmem here, .run/logs/web.log in `make run`)
    page.goto(base + last_link(r"https?://\S+?(/invitation/\S+/)", admin_email))
    page.locator("input[type=password]").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page.get_by_role("heading", name="Sub-accounts")).to_be_visible()
    assert_fits_the_screen(page)

    # and connects Stripe through the local Stripe's authorize page
    page.get_by_role("link", name="Settings → Stripe").click()
    expect(page.locator("#stripe-connection")).to_contain_text("Not connected")
    page.get_by_role("button", name="Connect with Stripe").click()
    expect(page.get_by_role("heading", name="Connect with Stripe")).to_be_visible()
    assert page.url.startswith(f"{localstripe}/oauth/authorize?")
    page.get_by_label("Business name").fill("Northwind Payments")
    shot("stripe-authorize")
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_text("Your Stripe account is connected.")).to_be_visible()
    expect(page.locator("#stripe-connection")).to_contain_text("Northwind Payments")
    shot("stripe-connected")

    # then creates a client and invites its account admin
    page.get_by_role("link", name="Sub-accounts").click()
    page.get_by_role("link", name="New sub-account").click()
    page.get_by_label("Name").fill("Harbor Dental")
    page.get_by_role("button", name="Create sub-account").click()
    expect(page.get_by_role("heading", name="Manage client: Harbor Dental")).to_be_visible()
    page.get_by_label("Email").fill(owner_email)
    page.get_by_label("Role").select_option("account_admin")
    page.get_by_role("button", name="Add person").click()
    expect(page.get_by_text(f"Invitation sent to {owner_email}.")).to_be_visible()

    # and sends a payment link
    page.locator("#billing").get_by_role("button", name="Send payment link").click()
    expect(page.get_by_text(f"Payment link sent to {owner_email}.")).to_be_visible()
    shot("manage-client-link-sent")
    payment_link = last_link(r"https?://\S+?(/billing/payment-link/\S+/)", owner_email)
    page.get_by_role("button", name="Sign out").click()

    # The client's account admin sets their own password from the invitation
    page.goto(base + last_link(r"https?://\S+?(/invitation/\S+/)", owner_email))
    page.locator("input[type=password]").fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page.get_by_role("heading", name="Harbor Dental")).to_be_visible()
    shot("client-dashboard")

    # opens the payment link and adds the card as people type it
    page.goto(base + payment_link)
    page.get_by_role("button", name="Continue to Company Billing").click()
    expect(page.get_by_role("heading", name="Company Billing: Harbor Dental")).to_be_visible()
    page.get_by_role("button", name="Add a card").click()
    page.get_by_label("Card number").press_sequentially("4242 4242 4242 4242")
    page.get_by_label("Expiration date").press_sequentially("12 / 2030")
    page.get_by_label("Security code").fill("123")
    page.get_by_label("ZIP").fill("10001")
    expect(page.get_by_label("Card number")).to_have_value("4242 4242 4242 4242")
    number, cvc = page.get_by_label("Card number").bounding_box(), page.get_by_label("ZIP").bounding_box()
    assert abs(number["y"] - cvc["y"]) < 2, "the card fields wrapped onto two lines"
    shot("client-card-form")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_text("Your card is saved.")).to_be_visible()
    expect(page.get_by_test_id("card-on-file")).to_contain_text("Visa ending in 4242, expires 12/2030")
    shot("client-card-saved")
    page.get_by_role("button", name="Sign out").click()

    # The card shows on Manage Client
    page.goto(f"{base}/login/")
    sign_in(page, admin_email, ADMIN_PASSWORD)
    page.get_by_role("link", name="Sub-accounts").click()
    page.get_by_role("link", name="Harbor Dental").click()
    expect(page.locator("#billing")).to_contain_text("Visa ending in 4242, expires 12/2030")
    assert_fits_the_screen(page)
    shot("manage-client-card-on-file")

    with django_db_blocker.unblock():
        agency = Agency.objects.get(slug=slug)
        connected = ConnectedAccount.objects.get(agency=agency)
        with tenant_context(agency):
            profile = BillingProfile.objects.get(subaccount__name="Harbor Dental")
            assert (profile.card_last4, profile.card_exp_month, profile.card_exp_year) == ("4242", 12, 2030)
            assert profile.stripe_account_id == connected.account_id
        connection.set_schema_to_public()
    for site in (platform, base):  # browsers ask every domain for /favicon.ico
        icon = page.goto(f"{site}/favicon.ico")
        assert icon is not None and icon.ok, site
        assert icon.headers["content-type"].startswith("image/svg+xml"), (site, icon.headers)
    assert sorted(p.name for p in SCREENSHOTS.glob("*.png"))[-1] == f"{shot.count:02d}-manage-client-card-on-file.png"
