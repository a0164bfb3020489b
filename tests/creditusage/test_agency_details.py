"""Manage Client → usage details, the rebilling dashboard (from the rollups) and the reconciliation export."""

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.plans import Product
from creditusage.dashboard import DashboardFilter, rebilling_dashboard
from creditusage.models import (
    AgencyDayRollup,
    LedgerDayTotal,
    SubAccountMonthTotal,
    SubAccountProductSpanTotal,
    SubAccountSpanTotal,
    UsageMonthRollup,
    UsageRollup,
)
from creditusage.selectors import month_bounds
from tests.billing.fixtures import ACCT_A
from tests.conftest import client_for
from tests.creditusage.helpers import history, ledger, parse_csv
from tests.wallets.helpers import add_delta, rebill
from wallets.models import Charge, WalletEntry
from wallets.services import wallet_adjust, wallet_ensure, wallet_rate


def test_agency_sees_cost_multiplier_and_profit_per_line(world, connected, raw_stripe):
    client = history(world.a, raw_stripe)
    history(world.a, raw_stripe, index=1, secret="other client's secret", top_up=False)
    browser = client_for(world.a, world.a.admin)
    url = f"/agency/subaccounts/{client.pk}/usage/"
    html = browser.get(url).content.decode()
    assert "Agency cost" in html and "Multiplier" in html and "secret" not in html
    rows = parse_csv(browser.get(url + "?format=csv"))
    with tenant_context(world.a.agency):
        expected = ledger(client)
        multiplier = WalletEntry.objects.filter(wallet__subaccount=client).exclude(multiplier=None).first().multiplier  # type: ignore[union-attr]
    usage = [row for row in rows if row["agency_cost"]]
    assert len(usage) == 4 and all(row["multiplier"] == f"{multiplier:f}" for row in usage)
    for row in usage:
        assert Decimal(row["profit"]) == -Decimal(row["amount"]) - Decimal(row["agency_cost"])
    assert sum(Decimal(r["agency_cost"]) for r in usage) == expected["cost"]
    profit = expected["revenue"] - expected["cost"]
    assert sum(Decimal(r["profit"]) for r in usage) == profit
    assert f'data-testid="total-profit">${profit:.2f}<' in html


@pytest.mark.parametrize("who", ["agency_user", "account_admin"])
def test_usage_details_is_for_agency_admins_only(world, connected, raw_stripe, who):
    client = history(world.a, raw_stripe, top_up=False)
    user = {"agency_user": world.a.agency_user, "account_admin": world.a.account_admins[0]}[who]
    assert client_for(world.a, user).get(f"/agency/subaccounts/{client.pk}/usage/?format=csv").status_code == 404


def test_rollups_equal_the_ledger_after_random_usage(world, connected, raw_stripe):
    rng = random.Random(11)
    with tenant_context(world.a.agency):
        clients = world.a.subaccounts
        for client in clients:
            rebill(client, account_id=ACCT_A, raw=raw_stripe)
        today = timezone.now().date()
        for _ in range(6):
            for _ in range(rng.randint(1, 12)):
                client = rng.choice(clients)
                cost = Decimal(rng.randint(-50_000, 3_000_000)) / 1_000_000
                day = today - timedelta(days=rng.randint(0, 3))
                add_delta(client, cost, product=rng.choice(list(Product)), day=day, units=str(rng.randint(-2, 20)))
            for client in clients:
                wallet_rate(subaccount_id=client.pk)
                if rng.random() < 0.5:
                    amount = Decimal(rng.randint(-9_000_000, 9_000_000) or 1) / 1_000_000
                    wallet_adjust(wallet=wallet_ensure(subaccount=client), amount=amount, note="n", by="t")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT w.subaccount_id, e.day, e.product, sum(e.units_delta), sum(e.cost_delta), sum(-e.amount),"
                " count(*) FROM wallets_walletentry e JOIN wallets_wallet w ON w.id = e.wallet_id"
                " WHERE e.usage_delta_id IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
            from_ledger = cursor.fetchall()
        rollups = list(UsageRollup.objects.order_by("subaccount_id", "day", "product").values_list(
            "subaccount_id", "day", "product", "units", "cost", "revenue", "entries"))
    assert from_ledger and rollups == [tuple(row) for row in from_ledger]
    # and the per-day ledger totals (every kind of entry) equal it too
    with tenant_context(world.a.agency):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT wallet_id, (created_at AT TIME ZONE 'UTC')::date, product, sign(amount), count(*), sum(amount),"
                " coalesce(sum(cost_delta) FILTER (WHERE usage_delta_id IS NOT NULL), 0),"
                " coalesce(sum(-amount) FILTER (WHERE usage_delta_id IS NOT NULL), 0)"
                " FROM wallets_walletentry GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")
            from_ledger = cursor.fetchall()
        day_totals = list(LedgerDayTotal.objects.order_by("wallet_id", "day", "product", "sign").values_list(
            "wallet_id", "day", "product", "sign", "entries", "amount", "usage_cost", "usage_amount"))
    # and the monthly and agency-wide rollups equal the daily ones summed
    with tenant_context(world.a.agency):
        months = {(r.subaccount_id, r.month, r.product): (r.units, r.cost, r.revenue, r.entries)
                  for r in UsageMonthRollup.objects.all()}
        agency_days = {(r.day, r.product): (r.cost, r.revenue) for r in AgencyDayRollup.objects.all()}
    summed_months: dict = {}
    summed_days: dict = {}
    for subaccount_id, day, product, units, cost, revenue, entries in rollups:
        key = (subaccount_id, day.replace(day=1), product)
        u, c, r, n = summed_months.get(key, (0, 0, 0, 0))
        summed_months[key] = (u + units, c + cost, r + revenue, n + entries)
        c, r = summed_days.get((day, product), (0, 0))
        summed_days[(day, product)] = (c + cost, r + revenue)
    with tenant_context(world.a.agency):
        month_totals = {(r.subaccount_id, r.month): (r.cost, r.revenue) for r in SubAccountMonthTotal.objects.all()}
    summed_totals: dict = {}
    for (subaccount_id, month, _), (_, cost, revenue, _) in summed_months.items():
        c, r = summed_totals.get((subaccount_id, month), (0, 0))
        summed_totals[(subaccount_id, month)] = (c + cost, r + revenue)
    assert months == summed_months and agency_days == summed_days and month_totals == summed_totals
    # and the per-sub-account span totals (any range's figures) equal the daily ones summed per span
    # (of every product, and of each product)
    summed_spans: dict = {}
    summed_product_spans: dict = {}
    for subaccount_id, day, product, _, cost, revenue, _ in rollups:
        for days in (1, 2, 4, 8, 16, 32):
            key = (days, day.replace(day=(day.day - 1) // days * days + 1), subaccount_id)
            c, r = summed_spans.get(key, (0, 0))
            summed_spans[key] = (c + cost, r + revenue)
            c, r = summed_product_spans.get((*key, product), (0, 0))
            summed_product_spans[(*key, product)] = (c + cost, r + revenue)
    with tenant_context(world.a.agency):
        span_totals = {(r.span_days, r.span_start, r.subaccount_id): (r.cost, r.revenue)
                       for r in SubAccountSpanTotal.objects.all()}
        product_span_totals = {(r.span_days, r.span_start, r.subaccount_id, r.product): (r.cost, r.revenue)
                               for r in SubAccountProductSpanTotal.objects.all()}
    assert len(span_totals) > len(rollups) / 6 and span_totals == summed_spans
    assert len(product_span_totals) > len(span_totals) and product_span_totals == summed_product_spans
    assert any(row[3] > 0 for row in day_totals)
    assert day_totals == [tuple(row) for row in from_ledger]


def test_dashboard_figures_equal_the_ledger_and_stay_in_the_agency(world, connected, raw_stripe):
    first = history(world.a, raw_stripe, top_up=False)
    second = history(world.a, raw_stripe, index=1, top_up=False)
    history(world.b, raw_stripe, top_up=False)
    with tenant_context(world.a.agency):
        last_month = timezone.now().date().replace(day=1) - timedelta(days=3)
        add_delta(first, "4.00", product=Product.SMS, day=last_month)
        wallet_rate(subaccount_id=first.pk)
        this_month = ledger(first, "day >= %s", (timezone.now().date().replace(day=1),))
        previous = ledger(first, "day < %s", (timezone.now().date().replace(day=1),))
        both = [ledger(s, "day >= %s", (timezone.now().date().replace(day=1),)) for s in (first, second)]
    browser = client_for(world.a, world.a.admin)
    html = browser.get("/agency/settings/billing/details/").content.decode()
    revenue = sum((f["revenue"] for f in both), Decimal(0))
    cost = sum((f["cost"] for f in both), Decimal(0))
    assert f'data-testid="revenue">${revenue:.2f}<' in html
    assert f'data-testid="cost">${cost:.2f}<' in html
    assert f'data-testid="profit">${revenue - cost:.2f}<' in html
    assert "Bravo" not in html
    rows = {int(r["subaccount_id"]): r for r in parse_csv(browser.get("/agency/settings/billing/details/?format=csv"))}
    assert set(rows) == {first.pk, second.pk}
    assert Decimal(rows[first.pk]["revenue"]) == this_month["revenue"]
    assert Decimal(rows[first.pk]["previous_month_revenue"]) == previous["revenue"]
    change = ((this_month["revenue"] - previous["revenue"]) * 100 / previous["revenue"]).quantize(Decimal("0.01"))
    assert Decimal(rows[first.pk]["revenue_change_percent"]) == change
    # filtered by sub-account and product
    with tenant_context(world.a.agency):
        start, end = month_bounds(timezone.now().date())
        only = rebilling_dashboard(dashboard_filter=DashboardFilter(start=start, end=end, subaccount_ids=[second.pk],
                                                                    product=Product.CALLS))
        calls = ledger(second, "product = 'calls'")
    assert only.total.revenue == calls["revenue"] and [r.subaccount_id for r in only.per_subaccount] == [second.pk]
    # the same filter through the page; an unknown sub-account or a bad month is refused
    html = browser.get(f"/agency/settings/billing/details/?subaccount={second.pk}&product=calls").content.decode()
    assert f'data-testid="revenue">${calls["revenue"]:.2f}<' in html
    assert f'<option value="{second.pk}" selected>' in html
    for bad in ("subaccount=99999", "subaccount=x", "month=2026-13", "product=fax"):
        response = browser.get(f"/agency/settings/billing/details/?{bad}")
        assert response.status_code == 400 and 'class="errorlist' in response.content.decode(), bad
    # agency staff who are not admins, and clients, never see it
    assert client_for(world.a, world.a.agency_user).get("/agency/settings/billing/details/").status_code == 404
    assert client_for(world.a, world.a.account_admins[0]).get("/agency/settings/billing/details/").status_code == 404


def test_reconciliation_export_reconciles_to_the_cent(world, connected, raw_stripe):
    client = history(world.a, raw_stripe)
    history(world.a, raw_stripe, index=1, top_up=False)
    history(world.b, raw_stripe, secret="bravo's secret", top_up=False)
    month = timezone.now().date()
    url = f"/agency/settings/billing/reconciliation.csv?month={month:%Y-%m}"
    response = client_for(world.a, world.a.admin).get(url)
    rows = parse_csv(response)
    with tenant_context(world.a.agency):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*), sum(amount), sum(cost_delta) FROM wallets_walletentry")
            count, total, cost = cursor.fetchone()
        charge = Charge.objects.get(status=Charge.Status.SUCCEEDED)
    assert len(rows) == count
    assert sum(Decimal(r["client_amount"]) for r in rows) == total
    assert sum(Decimal(r["agency_cost"]) for r in rows if r["agency_cost"]) == cost
    paid = [r for r in rows if r["payment_intent_id"]]
    assert [(r["payment_intent_id"], Decimal(r["client_amount"]), int(r["subaccount_id"])) for r in paid] == [
        (charge.payment_intent_id, charge.amount, client.pk)]
    assert all(r["provider_account"] for r in rows if r["type"] == "usage_debit")
    assert "bravo" not in str(rows)
    # bad input changes nothing and says why
    assert client_for(world.a, world.a.admin).get("/agency/settings/billing/reconciliation.csv?month=2026-13"
                                                  ).status_code == 400
    assert client_for(world.a, world.a.account_admins[0]).get("/agency/settings/billing/reconciliation.csv"
                                                              ).status_code == 404


def test_a_month_with_nothing_exports_only_the_header(world, connected):
    response = client_for(world.a, world.a.admin).get("/agency/settings/billing/reconciliation.csv?month=2001-01")
    assert response.status_code == 200 and parse_csv(response) == []
    assert date(2001, 1, 1)
