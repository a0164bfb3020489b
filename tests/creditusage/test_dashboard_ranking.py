"""The dashboard's top sub-accounts of a range: found from each span's leaders when their bound settles it, summed
over every sub-account otherwise — the same ranking either way, checked against every sub-account summed."""

import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django_tenants.utils import tenant_context

from agencies.plans import Product
from creditusage.dashboard import DashboardFilter, _top_by_threshold, rebilling_dashboard
from creditusage.models import (
    SPAN_DAYS,
    SubAccountCostSpanTotal,
    SubAccountProductCostSpanTotal,
    SubAccountProductSpanTotal,
    SubAccountSpanTotal,
)
from subaccounts.models import SubAccount

DAY_ONE = date(2026, 9, 1)


def _span_start(day: date, days: int) -> date:
    return day.replace(day=(day.day - 1) // days * days + 1)


def _spans_write(usage: dict[tuple[int, date, str], tuple[Decimal, Decimal, Decimal]]) -> None:
    """Span totals (every product, and each product) of daily (revenue, rebilled cost, provider cost) per
    (sub-account, day, product), as the rating (only what it rebilled) and the deltas' trigger keep them."""
    spans: dict = defaultdict(lambda: [Decimal(0)] * 3)
    product_spans: dict = defaultdict(lambda: [Decimal(0)] * 3)
    for (subaccount_id, day, product), figures in usage.items():
        for days in SPAN_DAYS:
            for key, totals in (((days, _span_start(day, days), subaccount_id), spans),
                                ((days, _span_start(day, days), subaccount_id, product), product_spans)):
                totals[key] = [a + b for a, b in zip(totals[key], figures, strict=True)]
    SubAccountSpanTotal.objects.bulk_create(
        SubAccountSpanTotal(span_days=days, span_start=first, subaccount_id=subaccount_id, revenue=revenue, cost=cost)
        for (days, first, subaccount_id), (revenue, cost, _) in spans.items() if revenue or cost)
    SubAccountCostSpanTotal.objects.bulk_create(
        SubAccountCostSpanTotal(span_days=days, span_start=first, subaccount_id=subaccount_id, cost=cost)
        for (days, first, subaccount_id), (_, _, cost) in spans.items())
    SubAccountProductSpanTotal.objects.bulk_create(
        SubAccountProductSpanTotal(span_days=days, span_start=first, subaccount_id=subaccount_id, product=product,
                                   revenue=revenue, cost=cost)
        for (days, first, subaccount_id, product), (revenue, cost, _) in product_spans.items() if revenue or cost)
    SubAccountProductCostSpanTotal.objects.bulk_create(
        SubAccountProductCostSpanTotal(span_days=days, span_start=first, subaccount_id=subaccount_id, product=product,
                                       cost=cost)
        for (days, first, subaccount_id, product), (_, _, cost) in product_spans.items())


def _ranking(dashboard_filter: DashboardFilter, top: int | None) -> list[tuple[int, Decimal, Decimal]]:
    return [(row.subaccount_id, row.current.revenue, row.current.cost)
            for row in rebilling_dashboard(dashboard_filter=dashboard_filter, top=top).per_subaccount]


def test_the_top_found_from_span_leaders_is_every_sub_account_ranked(world, db):
    rng = random.Random(3)
    with tenant_context(world.a.agency):
        clients = SubAccount.objects.bulk_create(SubAccount(name=f"Ranked {n}") for n in range(40))
        # a few big spenders and many small ones, some of them alike (ties), some never rebilled (cost only)
        rates = {c.pk: Decimal(rng.choice([1, 1, 2, 3, 5, 40, 90])) * Decimal("0.013") for c in clients}
        usage = {}
        for client in clients:
            rebilled = rng.random() < 0.8
            for n in range(80):
                for product in rng.sample([Product.SMS, Product.CALLS, Product.MMS], 2):
                    cost = rates[client.pk] * rng.choice([1, 1, 1, 2]) * (2 if product == Product.CALLS else 1)
                    usage[(client.pk, DAY_ONE + timedelta(days=n), product)] = (
                        (cost * Decimal("1.05")).quantize(Decimal("0.000001")) if rebilled else Decimal(0),
                        cost if rebilled else Decimal(0), cost)
        _spans_write(usage)
        settled = 0
        for _ in range(25):
            start = DAY_ONE + timedelta(days=rng.randint(0, 60))
            end = start + timedelta(days=rng.randint(0, 45))
            product = rng.choice(["", "", Product.SMS, Product.CALLS])
            for rebilled_only in (False, True):
                dashboard_filter = DashboardFilter(start=start, end=end, product=product, rebilled_only=rebilled_only)
                everyone = _ranking(dashboard_filter, None)
                # every sub-account summed straight from the daily figures
                expected: dict = defaultdict(lambda: [Decimal(0), Decimal(0)])
                for (subaccount_id, day, day_product), (revenue, rebilled_cost, cost) in usage.items():
                    if start <= day <= end and product in ("", day_product):
                        expected[subaccount_id][0] += revenue
                        expected[subaccount_id][1] += rebilled_cost if rebilled_only else cost
                assert {row[0]: [row[1], row[2]] for row in everyone} == {
                    k: v for k, v in expected.items() if rebilled_only is False or v != [0, 0]}
                for top in (1, 5, 12):
                    assert _ranking(dashboard_filter, top) == everyone[:top], (start, end, product, top)
                    settled += _top_by_threshold(start=start, end=end, dashboard_filter=dashboard_filter,
                                                 top=top) is not None
        assert settled >= 50  # of 150: the leaders settled many rankings, so the path pages take was checked too


def test_leaders_that_do_not_settle_the_ranking_leave_it_to_the_sum(world, db):
    """Sept 2 and Sept 3 are two spans of a day: X leads the first and Y the second, but Z, second in both, has
    the most over the two. The leaders' bound (10 + 10) is above every leader's total: the ranking is summed."""
    with tenant_context(world.a.agency):
        x, y, z = SubAccount.objects.bulk_create(SubAccount(name=name) for name in "XYZ")
        usage = {(x.pk, date(2026, 9, 2), Product.SMS): (Decimal(10), Decimal(9), Decimal(9)),
                 (y.pk, date(2026, 9, 3), Product.SMS): (Decimal(10), Decimal(9), Decimal(9)),
                 (z.pk, date(2026, 9, 2), Product.SMS): (Decimal(6), Decimal(5), Decimal(5)),
                 (z.pk, date(2026, 9, 3), Product.SMS): (Decimal(6), Decimal(5), Decimal(5))}
        _spans_write(usage)
        one_day = DashboardFilter(start=date(2026, 9, 2), end=date(2026, 9, 2))
        assert _top_by_threshold(start=one_day.start, end=one_day.end, dashboard_filter=one_day, top=1) == [
            (x.pk, rebilling_dashboard(dashboard_filter=one_day, top=1).per_subaccount[0].current)]
        both = DashboardFilter(start=date(2026, 9, 2), end=date(2026, 9, 3))
        assert _top_by_threshold(start=both.start, end=both.end, dashboard_filter=both, top=1) is None
        [top] = rebilling_dashboard(dashboard_filter=both, top=1).per_subaccount
        assert (top.subaccount_id, top.current.revenue) == (z.pk, Decimal(12))
        # and a span with fewer rows than asked for bounds no one: summed too
        assert _top_by_threshold(start=both.start, end=both.end, dashboard_filter=both, top=3) is None
        assert [row.subaccount_id for row in rebilling_dashboard(dashboard_filter=both, top=3).per_subaccount] == [
            z.pk, x.pk, y.pk]


def test_equal_revenues_found_from_span_leaders_are_ordered_by_their_provider_cost(world, db):
    """X and Y rebilled the same, but Y's provider cost is higher (usage it did not rebill): Y ranks first, though
    the leaders' revenues alone would put X (the lower id) first."""
    with tenant_context(world.a.agency):
        x, y = SubAccount.objects.bulk_create(SubAccount(name=name) for name in "XY")
        _spans_write({(x.pk, date(2026, 9, 2), Product.SMS): (Decimal(10), Decimal(9), Decimal(9)),
                      (y.pk, date(2026, 9, 2), Product.SMS): (Decimal(10), Decimal(9), Decimal(20))})
        one_day = DashboardFilter(start=date(2026, 9, 2), end=date(2026, 9, 2))
        leaders = _top_by_threshold(start=one_day.start, end=one_day.end, dashboard_filter=one_day, top=1)
        assert leaders is not None
        assert [(subaccount_id, figures.revenue, figures.cost) for subaccount_id, figures in leaders] == [
            (y.pk, Decimal(10), Decimal(20))]
