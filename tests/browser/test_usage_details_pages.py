"""As a client's account admin and as the agency admin would: See details on Company Billing (filter, the daily
chart, the CSV of the filter), usage details on Manage Client and the rebilling dashboard.

Screenshots are saved under .run/screenshots/usage_details/ (git-ignored)."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from agencies.plans import Product
from phone.models import ProviderStatus
from stripe_connect.models import ConnectedAccount
from subaccounts.models import Membership
from tests.browser.test_people_flow import sign_in
from tests.factories import PASSWORD, MembershipFactory
from tests.rebilling.conftest import Shape, make_subaccount
from tests.wallets.helpers import add_delta
from wallets.models import WalletEntry
from wallets.services import wallet_adjust, wallet_ensure, wallet_rate

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".run" / "screenshots" / "usage_details"
READY = Shape("lc_phone", ProviderStatus.ACTIVE, has_admin=False, has_card=True)


@pytest.fixture(scope="module")
def rated_client(browser_agency, django_db_blocker) -> tuple[int, str]:
    """Committed: a rebilled LC Phone client with rated usage of three products and an adjustment."""
    from datetime import timedelta

    from django.utils import timezone

    from rebilling.models import SubAccountRebilling

    account_id = f"acct_1Web{uuid.uuid4().hex[:12]}"
    with django_db_blocker.unblock():
        ConnectedAccount.objects.create(agency=browser_agency, account_id=account_id)
        with tenant_context(browser_agency):
            client = make_subaccount(READY, name="Harbor Dental", account_id=account_id)
            owner = MembershipFactory(subaccount=client, role=Membership.Role.ACCOUNT_ADMIN,
                                      user__email=f"owner-{client.pk}@harbor.test").user
            SubAccountRebilling.objects.create(subaccount=client, switched_on=True,
                                               switched_on_at=timezone.now() - timedelta(days=10))
            today = timezone.now().date()
            for days_ago, product, cost in [(3, Product.SMS, "1.20"), (2, Product.CALLS, "2.50"),
                                            (1, Product.MMS, "0.75"), (0, Product.SMS, "0.90")]:
                add_delta(client, cost, product=product, day=today - timedelta(days=days_ago), units="5")
            assert wallet_rate(subaccount_id=client.pk).entries == 4
            wallet_adjust(wallet=wallet_ensure(subaccount=client), amount=Decimal("10"), note="Welcome credit",
                          by="admin")
        connection.set_schema_to_public()
    return client.pk, owner.email


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_client_sees_details_filters_and_downloads_the_csv(page, live_server_url, browser_agency, rated_client,
                                                           agency_db):
    subaccount_id, owner_email = rated_client
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)
    sign_in(page, base, owner_email, PASSWORD)
    page.goto(f"{base}/accounts/{subaccount_id}/billing/")
    page.get_by_test_id("see-details").click()
    expect(page.get_by_test_id("total-count")).to_have_text("5")
    expect(page.get_by_test_id("daily-chart")).to_be_visible()
    assert "Multiplier" not in page.content() and "Agency cost" not in page.content()
    _shot(page, "01-client-details")

    page.get_by_label("Credit/debit").select_option("debit")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("total-count")).to_have_text("4")
    _shot(page, "02-client-details-debits")
    with page.expect_download() as download_info:
        page.get_by_test_id("csv-link").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    with agency_db:
        debits = list(WalletEntry.objects.filter(wallet__subaccount_id=subaccount_id, amount__lt=0)
                      .values_list("amount", flat=True))
    assert sorted(Decimal(r["amount"]) for r in rows) == sorted(debits)
    assert "agency_cost" not in rows[0]
    total = sum(debits, Decimal(0))
    expect(page.get_by_test_id("total-debits")).to_have_text(f"${total:.2f}")


def test_agency_sees_profit_per_line_and_the_dashboard(page, live_server_url, browser_agency, rated_client):
    subaccount_id, _ = rated_client
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)
    sign_in(page, base, f"admin@{browser_agency.slug}.test", "Browser-admin-pw-1")
    page.goto(f"{base}/agency/subaccounts/{subaccount_id}/")
    page.get_by_test_id("usage-details").click()
    expect(page.get_by_role("columnheader", name="Profit")).to_be_visible()
    expect(page.get_by_test_id("total-cost")).to_have_text("$5.35")
    _shot(page, "03-agency-usage-details")

    page.goto(f"{base}/agency/settings/billing/details/")
    expect(page.get_by_test_id("cost")).to_be_visible()
    expect(page.locator(f'[data-testid="per-subaccount"] tr[data-subaccount="{subaccount_id}"]')).to_contain_text(
        "Harbor Dental")
    expect(page.get_by_test_id("daily-chart")).to_be_visible()
    _shot(page, "04-rebilling-dashboard")


def _sum(sql: str, params: list) -> Decimal:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0] or Decimal(0)


def test_agency_filters_the_dashboard_by_range_and_rebilled_only(page, live_server_url, browser_agency,
                                                                  rated_client, agency_db):
    from datetime import timedelta

    from django.utils import timezone

    from subaccounts.models import SubAccount

    subaccount_id, _ = rated_client
    today = timezone.now().date()
    start, end = today - timedelta(days=2), today
    with agency_db:
        # usage from before rebilling was switched on: the agency's cost, never rebilled
        add_delta(SubAccount.objects.get(pk=subaccount_id), "3.00", product=Product.CALLS,
                  day=today - timedelta(days=1), fetched_at=timezone.now() - timedelta(days=20))
        revenue = _sum("SELECT sum(-amount) FROM wallets_walletentry WHERE usage_delta_id IS NOT NULL"
                       " AND day BETWEEN %s AND %s", [start, end])
        rebilled_cost = _sum("SELECT sum(cost_delta) FROM wallets_walletentry WHERE usage_delta_id IS NOT NULL"
                             " AND day BETWEEN %s AND %s", [start, end])
        all_cost = _sum("SELECT sum(d.cost_delta) FROM phone_usagedelta d JOIN phone_usageline l ON l.id = d.line_id"
                        " WHERE l.day BETWEEN %s AND %s", [start, end])
    assert all_cost == rebilled_cost + 3
    base = live_server_url.format(host=browser_agency.domains.get(is_primary=True).domain)
    sign_in(page, base, f"admin@{browser_agency.slug}.test", "Browser-admin-pw-1")
    page.goto(f"{base}/agency/settings/billing/details/")
    page.get_by_label("From").fill(start.isoformat())
    page.get_by_label("To").fill(end.isoformat())
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("period")).to_contain_text(f"{start:%Y-%m-%d} – {end:%Y-%m-%d}")
    expect(page.get_by_test_id("revenue")).to_have_text(f"${revenue:.2f}")
    expect(page.get_by_test_id("cost")).to_have_text(f"${all_cost:.2f}")
    _shot(page, "05-dashboard-range")
    page.get_by_label("Rebilled only").check()
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("period")).to_contain_text("rebilled usage only")
    expect(page.get_by_test_id("cost")).to_have_text(f"${rebilled_cost:.2f}")
    expect(page.get_by_test_id("revenue")).to_have_text(f"${revenue:.2f}")
    expect(page.locator(f'[data-testid="per-subaccount"] tr[data-subaccount="{subaccount_id}"]')).to_contain_text(
        "Harbor Dental")
    _shot(page, "06-dashboard-rebilled-only")
    assert (SCREENSHOTS / "06-dashboard-rebilled-only.png").exists()
