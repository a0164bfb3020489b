"""As a person would: the agency admin creates a client and its account admin, who then signs in."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from subaccounts.models import Membership, SubAccount

pytestmark = pytest.mark.browser


def sign_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_agency_admin_creates_client_and_account_admin_sees_only_it(page, live_server_url, browser_agency, agency_db):
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)

    # given the agency admin signs in
    sign_in(page, base, f"admin@{browser_agency.slug}.test", "Browser-admin-pw-1")
    expect(page.get_by_role("heading", name="Sub-accounts")).to_be_visible()

    # when they create two sub-accounts
    for name in ("Lakeside Bakery", "Other Client"):
        page.get_by_role("link", name="Sub-accounts").click()
        page.get_by_role("link", name="New sub-account").click()
        page.get_by_label("Name").fill(name)
        page.get_by_role("button", name="Create sub-account").click()
        expect(page.get_by_text(f"Sub-account {name} created.")).to_be_visible()
    page.get_by_role("link", name="Sub-accounts").click()
    page.get_by_role("link", name="Lakeside Bakery").click()
    expect(page.get_by_role("heading", name="Manage client: Lakeside Bakery")).to_be_visible()

    # and invite an account admin (the agency never chooses the client's password: there is no such field)
    expect(page.get_by_label("Password")).to_have_count(0)
    page.get_by_label("Email").fill("owner@lakeside.test")
    page.get_by_label("Full name").fill("Lena Lakeside")
    page.get_by_label("Role").select_option("account_admin")
    page.get_by_role("button", name="Add person").click()
    expect(page.get_by_text("Invitation sent to owner@lakeside.test.")).to_be_visible()
    expect(page.locator("#people")).to_contain_text("Lena Lakeside")
    [invitation] = mail.outbox
    link = re.search(r"https?://\S+/invitation/\S+/", invitation.body).group(0)

    # a bad email is refused next to the field
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_role("button", name="Add person").click()
    expect(page.locator(".field-error")).to_contain_text("Enter a valid email address.")

    page.get_by_role("button", name="Sign out").click()

    # then the account admin sets their own password from the invitation, and sees only their sub-account
    page.goto(link)
    page.get_by_label("Password").fill("Lakeside-owner-pw-9")
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page.get_by_role("heading", name="Lakeside Bakery")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "owner@lakeside.test", "Lakeside-owner-pw-9")
    expect(page.get_by_role("heading", name="Lakeside Bakery")).to_be_visible()
    expect(page.locator(".mainnav")).to_contain_text("Lakeside Bakery")
    expect(page.locator("body")).not_to_contain_text("Other Client")
    expect(page.locator(".mainnav")).not_to_contain_text("Sub-accounts")

    with agency_db:
        other = SubAccount.objects.get(name="Other Client")
        assert Membership.objects.get(user__email="owner@lakeside.test").role == Membership.Role.ACCOUNT_ADMIN
    response = page.goto(f"{base}/accounts/{other.pk}/")
    assert response.status == 404
    response = page.goto(f"{base}/agency/subaccounts/")
    assert response.status == 404


def test_wrong_password_shows_a_clear_error_and_locks_after_the_limit(page, live_server_url, browser_agency):
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)
    for _ in range(4):
        sign_in(page, base, f"admin@{browser_agency.slug}.test", "nope")
        expect(page.get_by_role("alert")).to_contain_text("Wrong email or password.")
    sign_in(page, base, f"admin@{browser_agency.slug}.test", "nope")
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-in attempts")
    sign_in(page, base, f"admin@{browser_agency.slug}.test", "Browser-admin-pw-1")
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-in attempts")
