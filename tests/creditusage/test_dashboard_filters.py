"""The rebilling dashboard's date range and "rebilled only" filters, and its cost: the agency's LC Phone/Twilio
cost of every sub-account's usage (rebilled or not), rolled up from the usage deltas by their trigger. Every figure
is checked against the ledger and the deltas summed straight from SQL."""

import itertools
import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context
from hypothesis import given
from hypothesis import strategies as st

from agencies.plans import PhoneProvider, Product
from creditusage.dashboard import (
    DashboardFilter,
    period_pieces,
    period_spans,
    previous_period,
    rebilling_dashboard,
)
from creditusage.models import (
    SPAN_DAYS,
    AgencyCostDayRollup,
    SubAccountCostSpanTotal,
    SubAccountProductCostSpanTotal,
    UsageCostMonthRollup,
    UsageCostRollup,
)
from phone.models import SubAccountProvider, UsageDelta
from tests.billing.fixtures import ACCT_A, ACCT_B
from tests.conftest import client_for
from tests.creditusage.helpers import parse_csv
from tests.wallets.helpers import add_delta, rebill
from wallets.services import wallet_rate

URL = "/agency/settings/billing/details/"


def _sql_one(sql: str, params: list) -> Decimal:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0] or Decimal(0)


def revenue(start: date, end: date, subaccount_id: int | None = None, product: str = "") -> Decimal:
    """Σ client amounts of usage entries by usage day (the caller is in the agency's schema)."""
    return _sql_one("SELECT sum(-e.amount) FROM wallets_walletentry e JOIN wallets_wallet w ON w.id = e.wallet_id"
                    " WHERE e.usage_delta_id IS NOT NULL AND e.day BETWEEN %s AND %s"
                    " AND (%s::bigint IS NULL OR w.subaccount_id = %s) AND (%s = '' OR e.product = %s)",
                    [start, end, subaccount_id, subaccount_id, product, product])


def rebilled_cost(start: date, end: date) -> Decimal:
    return _sql_one("SELECT sum(e.cost_delta) FROM wallets_walletentry e"
                    " WHERE e.usage_delta_id IS NOT NULL AND e.day BETWEEN %s AND %s", [start, end])


def all_cost(start: date, end: date, subaccount_id: int | None = None, product: str = "") -> Decimal:
    """Σ every usage delta's cost, rebilled or not."""
    return _sql_one("SELECT sum(d.cost_delta) FROM phone_usagedelta d JOIN phone_usageline l ON l.id = d.line_id"
                    " WHERE l.day BETWEEN %s AND %s AND (%s::bigint IS NULL OR l.subaccount_id = %s)"
                    " AND (%s = '' OR l.product = %s)", [start, end, subaccount_id, subaccount_id, product, product])


def _not_rebilled(subaccount, sid: str) -> None:
    SubAccountProvider.objects.update_or_create(subaccount=subaccount, defaults={
        "provider": PhoneProvider.LC_PHONE, "lc_phone_account_sid": sid})


def _money(html: str, testid: str) -> Decimal:
    marker = f'data-testid="{testid}">$'
    return Decimal(html.split(marker, 1)[1].split("<", 1)[0])


def test_cost_covers_every_sub_accounts_usage_and_rebilled_only_restricts_it(world, connected, raw_stripe):
    now = timezone.now()
    today = now.date()
    month_start, month_end = today.replace(day=1), (today.replace(day=28) + timedelta(days=4)).replace(day=1) - \
        timedelta(days=1)
    with tenant_context(world.a.agency):
        rebilled, plain = world.a.subaccounts
        rebill(rebilled, account_id=ACCT_A, raw=raw_stripe, switched_on_at=now - timedelta(hours=1))
        add_delta(rebilled, "0.75", product=Product.CALLS, day=today, fetched_at=now - timedelta(hours=2))  # before
        add_delta(rebilled, "2.00", product=Product.SMS, day=today)
        add_delta(rebilled, "1.50", product=Product.CALLS, day=month_start)
        wallet_rate(subaccount_id=rebilled.pk)
        _not_rebilled(plain, "AC" + "7" * 32)
        add_delta(plain, "7.25", product=Product.SMS, day=today)
        add_delta(plain, "1.10", product=Product.MMS, day=month_start)
        expected_revenue = revenue(month_start, month_end)
        expected_all = all_cost(month_start, month_end)
        expected_rebilled = rebilled_cost(month_start, month_end)
        plain_cost = all_cost(month_start, month_end, plain.pk)
    with tenant_context(world.b.agency):  # B's usage never counts in A
        rebill(world.b.subaccounts[0], account_id=ACCT_B, raw=raw_stripe)
        add_delta(world.b.subaccounts[0], "99.00", product=Product.SMS, day=today)
        wallet_rate(subaccount_id=world.b.subaccounts[0].pk)
    assert expected_all == Decimal("12.60") and expected_rebilled == Decimal("3.50") and plain_cost == Decimal("8.35")
    browser = client_for(world.a, world.a.admin)
    # every sub-account's cost, revenue only from the wallet entries
    html = browser.get(URL).content.decode()
    assert _money(html, "revenue") == expected_revenue.quantize(Decimal("0.01"))
    assert _money(html, "cost") == expected_all.quantize(Decimal("0.01"))
    rows = {int(r["subaccount_id"]): r for r in parse_csv(browser.get(URL + "?format=csv"))}
    assert set(rows) == {rebilled.pk, plain.pk}
    assert Decimal(rows[plain.pk]["revenue"]) == 0 and Decimal(rows[plain.pk]["cost"]) == plain_cost
    assert Decimal(rows[plain.pk]["profit"]) == -plain_cost and rows[plain.pk]["margin_percent"] == ""
    assert Decimal(rows[rebilled.pk]["cost"]) == Decimal("4.25")
    assert sum(Decimal(r["cost"]) for r in rows.values()) == expected_all
    assert sum(Decimal(r["revenue"]) for r in rows.values()) == expected_revenue
    # the top of a whole month read off the monthly totals' index equals the aggregated answer
    with tenant_context(world.a.agency):
        for rebilled_only in (False, True):
            month = DashboardFilter(start=month_start, end=month_end, rebilled_only=rebilled_only)
            [indexed] = rebilling_dashboard(dashboard_filter=month, top=1).per_subaccount
            assert (indexed.subaccount_id, indexed.current) == (rebilled.pk, next(
                row.current for row in rebilling_dashboard(dashboard_filter=month, top=None).per_subaccount
                if row.subaccount_id == rebilled.pk))
            assert indexed.current.cost == (expected_rebilled if rebilled_only else Decimal("4.25"))
    # rebilled only: the cost of what was rebilled, and only the sub-accounts rebilled
    html = browser.get(URL + "?rebilled_only=on").content.decode()
    assert _money(html, "cost") == expected_rebilled.quantize(Decimal("0.01"))
    assert _money(html, "revenue") == expected_revenue.quantize(Decimal("0.01"))
    rows = {int(r["subaccount_id"]): r for r in parse_csv(browser.get(URL + "?rebilled_only=on&format=csv"))}
    assert set(rows) == {rebilled.pk}
    assert Decimal(rows[rebilled.pk]["cost"]) == expected_rebilled
    assert Decimal(rows[rebilled.pk]["revenue"]) == expected_revenue


def test_a_date_range_reads_whole_months_and_edges_and_compares_with_a_month_before(world, connected, raw_stripe):
    rng = random.Random(2)
    now = timezone.now()
    today = now.date()
    with tenant_context(world.a.agency):
        rebilled, plain = world.a.subaccounts
        rebill(rebilled, account_id=ACCT_A, raw=raw_stripe, switched_on_at=now - timedelta(days=1))
        _not_rebilled(plain, "AC" + "8" * 32)
        for _ in range(40):
            day = today - timedelta(days=rng.randint(0, 110))
            cost = Decimal(rng.randint(-20_000, 4_000_000)) / 1_000_000
            add_delta(rng.choice([rebilled, plain]), cost, product=rng.choice(list(Product)), day=day,
                      units=str(rng.randint(1, 9)))
        wallet_rate(subaccount_id=rebilled.pk)
        # a range with a whole month inside it and partial months at both ends
        start = (today.replace(day=1) - timedelta(days=40)).replace(day=3)
        end = today
        previous_start, previous_end = previous_period(start, end)
        expected = {"revenue": revenue(start, end), "cost": all_cost(start, end),
                    "previous": revenue(previous_start, previous_end),
                    "rebilled_now": revenue(start, end, rebilled.pk),
                    "rebilled_before": revenue(previous_start, previous_end, rebilled.pk),
                    "plain_cost": all_cost(start, end, plain.pk)}
    months, spans = period_pieces(start, end)
    assert months and spans[0][0] == start  # the 3rd: a partial month first, whatever today is
    browser = client_for(world.a, world.a.admin)
    query = f"?start={start}&end={end}"
    html = browser.get(URL + query).content.decode()
    assert f"{start:%Y-%m-%d} – {end:%Y-%m-%d}" in html
    assert _money(html, "revenue") == expected["revenue"].quantize(Decimal("0.01"))
    assert _money(html, "cost") == expected["cost"].quantize(Decimal("0.01"))
    assert _money(html, "previous-revenue") == expected["previous"].quantize(Decimal("0.01"))
    rows = {int(r["subaccount_id"]): r for r in parse_csv(browser.get(URL + query + "&format=csv"))}
    assert Decimal(rows[rebilled.pk]["revenue"]) == expected["rebilled_now"]
    assert Decimal(rows[rebilled.pk]["previous_month_revenue"]) == expected["rebilled_before"]
    if expected["rebilled_before"]:
        change = ((expected["rebilled_now"] - expected["rebilled_before"]) * 100 / expected["rebilled_before"]
                  ).quantize(Decimal("0.01"))
        assert Decimal(rows[rebilled.pk]["revenue_change_percent"]) == change
    assert Decimal(rows[plain.pk]["cost"]) == expected["plain_cost"]
    # the same range for one sub-account and one product
    with tenant_context(world.a.agency):
        sms = _sql_one("SELECT sum(d.cost_delta) FROM phone_usagedelta d JOIN phone_usageline l ON l.id = d.line_id"
                       " WHERE l.day BETWEEN %s AND %s AND l.subaccount_id = %s AND l.product = 'sms'",
                       [start, end, plain.pk])
    html = browser.get(URL + query + f"&subaccount={plain.pk}&product=sms").content.decode()
    assert _money(html, "cost") == sms.quantize(Decimal("0.01")) and _money(html, "revenue") == 0


@pytest.mark.parametrize("bad", ["start=2026-11-01", "start=2026-11-05&end=2026-11-01",
                                 "end=2026-11-31&start=2026-11-01", "start=2020-01-01&end=2026-01-01"])
def test_a_bad_range_is_refused_with_a_reason(world, db, bad):
    response = client_for(world.a, world.a.admin).get(f"{URL}?{bad}")
    assert response.status_code == 400 and 'class="errorlist' in response.content.decode()


def test_cost_rollups_equal_the_deltas_whatever_writes_them(world, db):
    rng = random.Random(7)
    today = timezone.now().date()
    with tenant_context(world.a.agency):
        first, second = world.a.subaccounts
        _not_rebilled(first, "AC" + "5" * 32)
        _not_rebilled(second, "AC" + "6" * 32)
        for _ in range(30):
            add_delta(rng.choice([first, second]), Decimal(rng.randint(-500_000, 900_000)) / 1_000_000,
                      product=rng.choice(list(Product)), day=today - timedelta(days=rng.randint(0, 70)),
                      units=str(rng.randint(-1, 5)))
        # one statement inserting several deltas of the same lines (as a batched store does)
        lines = list(UsageDelta.objects.order_by("line_id", "-revision").distinct("line_id")
                     .values_list("line_id", "revision"))
        UsageDelta.objects.bulk_create([
            UsageDelta(line_id=line_id, revision=revision + n, units_delta=Decimal(n), unit_price=None,
                       cost_delta=Decimal("0.000001") * n * line_id, currency="usd", fetched_at=timezone.now())
            for line_id, revision in lines for n in (1, 2)])
        with connection.cursor() as cursor:
            cursor.execute("SELECT l.subaccount_id, l.day, l.product, sum(d.units_delta), sum(d.cost_delta), count(*)"
                           " FROM phone_usagedelta d JOIN phone_usageline l ON l.id = d.line_id"
                           " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
            by_day = [tuple(row) for row in cursor.fetchall()]
            cursor.execute("SELECT l.subaccount_id, date_trunc('month', l.day)::date, l.product, sum(d.units_delta),"
                           " sum(d.cost_delta), count(*) FROM phone_usagedelta d JOIN phone_usageline l"
                           " ON l.id = d.line_id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
            by_month = [tuple(row) for row in cursor.fetchall()]
        assert by_day and list(UsageCostRollup.objects.order_by("subaccount_id", "day", "product").values_list(
            "subaccount_id", "day", "product", "units", "cost", "deltas")) == by_day
        assert list(UsageCostMonthRollup.objects.order_by("subaccount_id", "month", "product").values_list(
            "subaccount_id", "month", "product", "units", "cost", "deltas")) == by_month
        # the agency-wide daily cost and the per-sub-account span totals, summed here from the deltas
        agency_days: dict = {}
        spans: dict = {}
        product_spans: dict = {}
        for subaccount_id, day, product, units, cost, deltas in by_day:
            u, c, n = agency_days.get((day, product), (0, 0, 0))
            agency_days[(day, product)] = (u + units, c + cost, n + deltas)
            for key in span_keys(day):
                spans[(*key, subaccount_id)] = spans.get((*key, subaccount_id), 0) + cost
                product_spans[(*key, product, subaccount_id)] = product_spans.get(
                    (*key, product, subaccount_id), 0) + cost
        assert {(r.day, r.product): (r.units, r.cost, r.deltas)
                for r in AgencyCostDayRollup.objects.all()} == agency_days
        assert {(r.span_days, r.span_start, r.subaccount_id): r.cost
                for r in SubAccountCostSpanTotal.objects.all()} == spans
        assert len(product_spans) > len(spans) and {
            (r.span_days, r.span_start, r.product, r.subaccount_id): r.cost
            for r in SubAccountProductCostSpanTotal.objects.all()} == product_spans
    with tenant_context(world.b.agency):
        assert not UsageCostRollup.objects.exists()


def span_keys(day: date) -> list[tuple[int, date]]:
    """The spans (length, first day) a usage day counts in, worked out independently of the SQL."""
    return [(days, day.replace(day=(day.day - 1) // days * days + 1)) for days in SPAN_DAYS]


@given(start=st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)), length=st.integers(0, 400))
def test_a_period_is_its_spans_each_day_once(start, length):
    end = start + timedelta(days=length)
    spans = period_spans(start, end)
    covered = [first + timedelta(days=n) for days, first in spans for n in range(days)
               if (first + timedelta(days=n)).month == first.month]  # a span may run past its month's end
    assert sorted(covered) == [start + timedelta(days=n) for n in range(length + 1)]
    assert all(first.replace(day=1) + timedelta(days=(first.day - 1) // days * days) == first for days, first in spans)
    assert len([s for s in spans if s[0] < 32]) <= 10


def test_random_ranges_per_sub_account_equal_the_ledger_and_the_totals_their_sum(world, connected, raw_stripe):
    """Ranges of every shape (inside a month, across months, whole months, to a month's end) over random usage: each
    sub-account's revenue and cost read off the span totals equal the ledger and the deltas; the agency totals, read
    off the agency-wide daily rollups, equal the sum of the rows."""
    rng = random.Random(5)
    today = timezone.now().date()
    with tenant_context(world.a.agency):
        rebilled, plain = world.a.subaccounts
        rebill(rebilled, account_id=ACCT_A, raw=raw_stripe, switched_on_at=timezone.now() - timedelta(days=1))
        _not_rebilled(plain, "AC" + "9" * 32)
        for _ in range(60):
            add_delta(rng.choice([rebilled, plain]), Decimal(rng.randint(-30_000, 3_000_000)) / 1_000_000,
                      product=rng.choice(list(Product)), day=today - timedelta(days=rng.randint(0, 100)),
                      units=str(rng.randint(1, 9)))
        wallet_rate(subaccount_id=rebilled.pk)
        for _ in range(12):
            end = today - timedelta(days=rng.randint(0, 40))
            start = end - timedelta(days=rng.randint(0, 60))
            for rebilled_only, product in itertools.product((False, True), ("", rng.choice(list(Product)))):
                dashboard = rebilling_dashboard(dashboard_filter=DashboardFilter(
                    start=start, end=end, rebilled_only=rebilled_only, product=product), top=None)
                rows = {row.subaccount_id: row for row in dashboard.per_subaccount}
                for subaccount in (rebilled, plain):
                    row = rows.get(subaccount.pk)
                    expected_cost = (_sql_one(
                        "SELECT sum(e.cost_delta) FROM wallets_walletentry e JOIN wallets_wallet w"
                        " ON w.id = e.wallet_id WHERE e.usage_delta_id IS NOT NULL AND e.day BETWEEN %s AND %s"
                        " AND w.subaccount_id = %s AND (%s = '' OR e.product = %s)",
                        [start, end, subaccount.pk, product, product])
                        if rebilled_only else all_cost(start, end, subaccount.pk, product))
                    assert (row.current.revenue if row else 0) == revenue(start, end, subaccount.pk, product), (
                        start, end, product)
                    assert (row.current.cost if row else 0) == expected_cost, (start, end, rebilled_only, product)
                    previous_start, previous_end = previous_period(start, end)
                    if row:
                        assert row.previous.revenue == revenue(previous_start, previous_end, subaccount.pk, product)
                assert dashboard.total.revenue == sum((r.current.revenue for r in rows.values()), Decimal(0))
                assert dashboard.total.cost == sum((r.current.cost for r in rows.values()), Decimal(0))
                if not product:
                    assert dashboard.total.cost == (rebilled_cost(start, end) if rebilled_only
                                                    else all_cost(start, end))


def test_periods():
    assert previous_period(date(2026, 3, 1), date(2026, 3, 31)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert previous_period(date(2026, 3, 10), date(2026, 3, 30)) == (date(2026, 2, 10), date(2026, 2, 28))
    assert previous_period(date(2026, 1, 15), date(2026, 2, 14)) == (date(2025, 12, 15), date(2026, 1, 14))
    assert period_pieces(date(2026, 1, 15), date(2026, 4, 2)) == (
        [date(2026, 2, 1), date(2026, 3, 1)], [(date(2026, 1, 15), date(2026, 1, 31)), (date(2026, 4, 1),
                                                                                          date(2026, 4, 2))])
    assert period_pieces(date(2026, 2, 1), date(2026, 2, 28)) == ([date(2026, 2, 1)], [])
    assert period_pieces(date(2026, 2, 3), date(2026, 2, 3)) == ([], [(date(2026, 2, 3), date(2026, 2, 3))])
