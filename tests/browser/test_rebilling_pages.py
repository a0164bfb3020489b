"""As an agency admin would: switch rebilling on and off (a refusal says why), watch the preview follow the
multipliers being typed, apply a bulk action and read its report, filter Settings → Phone Integration.

Screenshots are saved under .run/screenshots/rebilling/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from phone.models import ProviderStatus
from rebilling.models import MultiplierOverride, SubAccountRebilling
from stripe_connect.models import ConnectedAccount
from tests.browser.test_people_flow import sign_in
from tests.rebilling.conftest import ACCT_A, Shape, make_subaccount

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".run" / "screenshots" / "rebilling"
READY = Shape("lc_phone", ProviderStatus.ACTIVE, has_admin=True, has_card=True)
NO_CARD = Shape("lc_phone", ProviderStatus.ACTIVE, has_admin=True, has_card=False)


@pytest.fixture(scope="module")
def clients(browser_agency, django_db_blocker) -> dict[str, int]:
    """Committed: the agency connected to Stripe, two clients ready to rebill and two without a card."""
    with django_db_blocker.unblock():
        ConnectedAccount.objects.create(agency=browser_agency, account_id=ACCT_A)
        with tenant_context(browser_agency):
            made = {name: make_subaccount(shape, name=name).pk for name, shape in [
                ("Harbor Dental", READY), ("Maple Realty", READY),
                ("Summit Gym", NO_CARD), ("Willow Spa", NO_CARD)]}
        connection.set_schema_to_public()
    return made


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _admin(page, live_server_url, browser_agency) -> str:
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)
    sign_in(page, base, f"admin@{browser_agency.slug}.test", "Browser-admin-pw-1")
    return base


def test_toggle_and_preview_on_manage_client(page, live_server_url, browser_agency, clients, agency_db):
    base = _admin(page, live_server_url, browser_agency)

    # a client without a card: switching on is refused, with the reason, in place
    page.goto(f"{base}/agency/subaccounts/{clients['Summit Gym']}/")
    resell = page.locator("#resell")
    resell.get_by_role("button", name="Switch phone rebilling on").click()
    expect(resell.get_by_test_id("resell-error")).to_have_text(
        "Rebilling was not switched on: The client has no card on file yet.")
    _shot(page, "01-refused")

    # a ready client: on, then off again
    page.goto(f"{base}/agency/subaccounts/{clients['Harbor Dental']}/")
    resell = page.locator("#resell")
    expect(resell.get_by_test_id("resell-state")).to_contain_text("Phone rebilling can be enabled")
    resell.get_by_role("button", name="Switch phone rebilling on").click()
    expect(resell.get_by_test_id("resell-state")).to_contain_text("Phone rebilling enabled")
    expect(resell.get_by_test_id("audit-log")).to_contain_text("Phone rebilling switched on")
    with agency_db:
        assert SubAccountRebilling.objects.get(subaccount_id=clients["Harbor Dental"]).switched_on

    # the preview follows the multiplier as it is typed, before anything is saved
    preview_sms = page.locator('#resell-preview tr[data-product="SMS"]')
    expect(preview_sms).to_contain_text("client pays $10.50, you keep $0.50")
    page.get_by_label("SMS", exact=True).press_sequentially("1.5", delay=40)
    expect(preview_sms).to_contain_text("your cost $10.00 → client pays $15.00, you keep $5.00")
    page.get_by_label("SMS", exact=True).fill("12")
    page.get_by_label("SMS", exact=True).press("End")
    expect(preview_sms).to_contain_text("Enter a multiplier between 1.00 and 10.00.")
    _shot(page, "02-preview")
    with agency_db:
        assert not MultiplierOverride.objects.exists()

    # saving a bad value shows the error next to the field; a good one is kept
    page.get_by_role("button", name="Save multipliers").click()
    expect(page.locator("#resell .field-error")).to_contain_text("between 1.00x and 10.00x")
    page.get_by_label("SMS", exact=True).fill("1.5")
    page.get_by_role("button", name="Save multipliers").click()
    expect(page.locator("#resell").get_by_test_id("audit-log")).to_contain_text("Multipliers changed")
    with agency_db:
        assert MultiplierOverride.objects.get(subaccount_id=clients["Harbor Dental"]).multiplier == 1.5

    page.locator("#resell").get_by_role("button", name="Switch phone rebilling off").click()
    expect(page.locator("#resell").get_by_test_id("resell-state")).to_contain_text("Phone rebilling can be enabled")
    _shot(page, "03-switched-off")


def test_bulk_report_and_phone_integration_filter(page, live_server_url, browser_agency, clients, agency_db):
    base = _admin(page, live_server_url, browser_agency)

    # select one ready client and one without a card, switch rebilling on for both
    page.goto(f"{base}/agency/subaccounts/")
    page.get_by_label("Select Maple Realty").check()
    page.get_by_label("Select Willow Spa").check()
    page.get_by_label("Action").select_option("switch_on")
    page.get_by_role("button", name="Apply to selected").click()
    report = page.get_by_test_id("bulk-report")
    expect(page.get_by_role("heading")).to_contain_text("Switch rebilling on: 1 of 2 applied")
    expect(report.locator(f'tr[data-subaccount="{clients["Maple Realty"]}"]')).to_contain_text("Applied")
    expect(report.locator(f'tr[data-subaccount="{clients["Willow Spa"]}"]')).to_contain_text(
        "Refused The client has no card on file yet.")
    _shot(page, "04-bulk-report")

    # Phone Integration: filter to the disabled ones, then the enabled one
    page.get_by_role("link", name="Settings → Phone Integration").click()
    table = page.get_by_test_id("phone-integration")
    expect(table.locator("tbody tr")).to_have_count(4)
    page.locator('[data-filter="disabled"]').click()
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("Summit Gym")
    expect(table).to_contain_text("Ask the client for a card")
    expect(table).not_to_contain_text("Maple Realty")
    page.locator('[data-filter="enabled"]').click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("Maple Realty")
    _shot(page, "05-phone-integration-enabled")

    # search within the filter, and the link to act
    page.locator('[data-filter="all"]').click()
    page.get_by_label("Search by name").fill("harbor")
    page.get_by_role("button", name="Search").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    table.get_by_role("link", name="Go to Manage Client").click()
    expect(page.get_by_role("heading", name="Manage client: Harbor Dental")).to_be_visible()
