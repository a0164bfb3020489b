"""Reads for the agency's rebilling dashboard (Settings → Billing → See details): revenue, cost, profit and margin
in total, per product and per sub-account with the change from the same days a month before.

Revenue is what was rebilled to clients (wallet entries, via the rollups the rating keeps); cost is the agency's
cost of *every* sub-account's usage, rebilled or not (usage deltas, via the rollups their trigger keeps) — or,
with "rebilled only", the cost of the usage that was rebilled. Agency-wide figures are read from the agency's daily
rollups; per sub-account, a period is read as a few aligned spans of days (whole months, and ≤ 5 spans for each
month it takes part of) from the span totals — or, for one product, its whole months from the monthly rollups and
its edges from the daily ones: never the ledger, never the deltas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Sum

from agencies.plans import Product
from creditusage.models import (
    AgencyCostDayRollup,
    AgencyDayRollup,
    SubAccountCostSpanTotal,
    SubAccountMonthTotal,
    SubAccountSpanTotal,
    UsageCostMonthRollup,
    UsageCostRollup,
    UsageMonthRollup,
    UsageRollup,
)
from creditusage.selectors import daily_usage_by_product, month_bounds
from subaccounts.models import SubAccount

ZERO = Decimal(0)


@dataclass(frozen=True)
class Figures:
    revenue: Decimal
    cost: Decimal

    @property
    def profit(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin(self) -> Decimal | None:
        """Profit as a percentage of revenue (None when nothing was rebilled)."""
        return (self.profit * 100 / self.revenue).quantize(Decimal("0.01")) if self.revenue else None


NOTHING = Figures(revenue=ZERO, cost=ZERO)


@dataclass(frozen=True)
class SubAccountFigures:
    subaccount_id: int
    name: str
    current: Figures
    previous: Figures

    @property
    def revenue_change(self) -> Decimal | None:
        """Change of revenue from the same days a month before, in percent (None without revenue then)."""
        if not self.previous.revenue:
            return None
        return ((self.current.revenue - self.previous.revenue) * 100 / self.previous.revenue).quantize(
            Decimal("0.01"))


@dataclass(frozen=True)
class DashboardFilter:
    start: date
    end: date  # inclusive
    subaccount_ids: list[int] = field(default_factory=list)  # empty: every sub-account
    product: str = ""
    rebilled_only: bool = False


@dataclass(frozen=True)
class Dashboard:
    start: date
    end: date
    previous_start: date
    previous_end: date
    total: Figures
    previous_total: Figures
    per_product: list[tuple[str, Figures]]
    per_subaccount: list[SubAccountFigures]
    daily: dict[date, dict[str, Decimal]]


def _month_shift_back(day: date, *, last_of_month: bool) -> date:
    first_of_previous = (day.replace(day=1) - timedelta(days=1)).replace(day=1)
    previous_end = month_bounds(first_of_previous)[1]
    if last_of_month:
        return previous_end
    return first_of_previous.replace(day=min(day.day, previous_end.day))


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The same days a month earlier (a period ending on a month's last day ends on the previous month's last)."""
    return (_month_shift_back(start, last_of_month=False),
            _month_shift_back(end, last_of_month=end == month_bounds(end)[1]))


def period_pieces(start: date, end: date) -> tuple[list[date], list[tuple[date, date]]]:
    """The whole months inside [start, end] (their 1st) and the day spans left at its edges."""
    months: list[date] = []
    spans: list[tuple[date, date]] = []
    cursor = start
    while cursor <= end:
        month_start, month_end = month_bounds(cursor)
        if cursor == month_start and month_end <= end:
            months.append(month_start)
            cursor = month_end + timedelta(days=1)
        else:
            span_end = min(month_end, end)
            if spans and spans[-1][1] + timedelta(days=1) == cursor:
                spans[-1] = (spans[-1][0], span_end)
            else:
                spans.append((cursor, span_end))
            cursor = span_end + timedelta(days=1)
    return months, spans


def period_spans(start: date, end: date) -> list[tuple[int, date]]:
    """[start, end] as aligned spans (days, first day) of models.SPAN_DAYS: a whole month is one span of 32; the
    days a range takes of a month are at most 9 spans (5 when they run to the month's end or from its start)."""
    spans: list[tuple[int, date]] = []
    months, day_spans = period_pieces(start, end)
    spans += [(32, month) for month in months]
    for first, final in day_spans:
        while first <= final:  # month by month (a day span may run from one month into the next)
            month_start, month_end = month_bounds(first)
            # Offsets within the month's 32 slots; days past the month's end have no rows, so a span to its last
            # day may run over them.
            offset, last = first.day - 1, 31 if final >= month_end else final.day - 1
            while offset < month_end.day and offset <= last:
                days = next(d for d in (16, 8, 4, 2, 1) if offset % d == 0 and offset + d - 1 <= last)
                spans.append((days, month_start + timedelta(days=offset)))
                offset += days
            first = month_end + timedelta(days=1)
    return spans


def _span_figures(*, start: date, end: date, dashboard_filter: DashboardFilter, top: int | None,
                  only_ids: list[int] | None = None) -> list[tuple[int, Figures]]:
    """Per sub-account, every product, read off the span totals: a few rows per sub-account for any range (by
    revenue, then cost, at most `top`)."""
    spans = period_spans(start, end)
    if not spans:
        return []
    ids = only_ids if only_ids is not None else dashboard_filter.subaccount_ids
    narrow = " AND subaccount_id = ANY(%s)" if ids else ""

    def summed(table: str, columns: list[str], params: list[Any]) -> str:
        # One index range per span (span_days, span_start): never a scan of the table.
        selected = ", ".join(["subaccount_id", *columns])
        part = f"SELECT {selected} FROM {table} WHERE span_days = %s AND span_start = %s{narrow}"  # noqa: S608
        for days, first in spans:
            params += [days, first, *([ids] if ids else [])]
        sums = ", ".join(f"sum({column}) AS {column}" for column in columns)
        return f"SELECT subaccount_id, {sums} FROM ({' UNION ALL '.join([part] * len(spans))}) s GROUP BY 1"  # noqa: S608

    params: list[Any] = []
    revenue_sql = summed(SubAccountSpanTotal._meta.db_table, ["revenue", "cost"], params)
    limit = "" if top is None else f" LIMIT {int(top)}"
    if dashboard_filter.rebilled_only:
        sql = f"SELECT subaccount_id, revenue, cost FROM ({revenue_sql}) r ORDER BY 2 DESC, 3 DESC, 1{limit}"  # noqa: S608
    else:
        cost_sql = summed(SubAccountCostSpanTotal._meta.db_table, ["cost"], params)
        sql = f"""
            SELECT subaccount_id, coalesce(r.revenue, 0), coalesce(p.cost, 0)
            FROM ({revenue_sql}) r FULL JOIN ({cost_sql}) p USING (subaccount_id)
            ORDER BY 2 DESC, 3 DESC, 1{limit}"""  # noqa: S608 — only our own table names and an int
    with transaction.atomic(), connection.cursor() as cursor:
        # Every sub-account's sums are hashed: in memory (~1.3 kB each), not spilled to disk in batches. LOCAL: for
        # this transaction only (or the caller's, if it has one).
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(sql, params)
        return [(subaccount_id, Figures(revenue=revenue, cost=cost)) for subaccount_id, revenue, cost in cursor]


def _source_sql(*, start: date, end: date, dashboard_filter: DashboardFilter, params: list[Any]) -> str:
    """A UNION ALL of (subaccount_id, product, revenue, cost) rows whose sums are the period's figures."""
    months, spans = period_pieces(start, end)
    narrow = ""
    narrow_params: list[Any] = []
    if dashboard_filter.subaccount_ids:
        narrow += " AND subaccount_id = ANY(%s)"
        narrow_params.append(dashboard_filter.subaccount_ids)
    if dashboard_filter.product:
        narrow += " AND product = %s"
        narrow_params.append(dashboard_filter.product)
    # Revenue rows carry the rebilled cost only when that is the cost asked for.
    revenue_cost = "cost" if dashboard_filter.rebilled_only else "0"
    tables: list[tuple[type[models.Model], type[models.Model], str, str]] = [
        (UsageMonthRollup, UsageRollup, "revenue", revenue_cost)]
    if not dashboard_filter.rebilled_only:
        tables.append((UsageCostMonthRollup, UsageCostRollup, "0", "cost"))
    parts = []

    def columns(revenue: str, cost: str) -> str:
        return f"SELECT subaccount_id, product, {revenue} AS revenue, {cost} AS cost"

    for monthly, daily, revenue, cost in tables:
        if months:
            parts.append(f"{columns(revenue, cost)} FROM {monthly._meta.db_table} WHERE month = ANY(%s){narrow}")
            params += [months, *narrow_params]
        for span_start, span_end in spans:
            parts.append(f"{columns(revenue, cost)} FROM {daily._meta.db_table} WHERE day BETWEEN %s AND %s{narrow}")
            params += [span_start, span_end, *narrow_params]
    return " UNION ALL ".join(parts)


def _figures_by(*, start: date, end: date, dashboard_filter: DashboardFilter, top: int | None,
                only_ids: list[int] | None = None) -> tuple[dict[str, Figures], list[tuple[int, Figures]]]:
    """Per product, and per sub-account (by revenue, then cost, at most `top`), in one pass over the rollups."""
    if only_ids is not None:
        dashboard_filter = DashboardFilter(start=start, end=end, subaccount_ids=only_ids,
                                           product=dashboard_filter.product,
                                           rebilled_only=dashboard_filter.rebilled_only)
    params: list[Any] = []
    source = _source_sql(start=start, end=end, dashboard_filter=dashboard_filter, params=params)
    limit = "" if top is None else f" LIMIT {int(top)}"
    per_subaccount_sql = "" if top == 0 else f"""
        UNION ALL
        (SELECT subaccount_id, NULL, sum(revenue), sum(cost) FROM per GROUP BY subaccount_id
         ORDER BY 3 DESC, 4 DESC, 1{limit})"""  # noqa: S608 — an int only
    sql = f"""
        WITH per AS MATERIALIZED (
            SELECT subaccount_id, product, sum(revenue) AS revenue, sum(cost) AS cost FROM ({source}) s
            GROUP BY 1, 2
        )
        SELECT NULL::bigint, product, sum(revenue), sum(cost) FROM per GROUP BY product{per_subaccount_sql}
    """  # noqa: S608 — only our own table names and an int are formatted in
    per_product: dict[str, Figures] = {}
    per_subaccount: list[tuple[int, Figures]] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for subaccount_id, product, revenue, cost in cursor.fetchall():
            figures = Figures(revenue=revenue or ZERO, cost=cost or ZERO)
            if subaccount_id is None:
                per_product[product] = figures
            else:
                per_subaccount.append((subaccount_id, figures))
    return per_product, per_subaccount


def _per_product(*, start: date, end: date, dashboard_filter: DashboardFilter) -> dict[str, Figures]:
    """Per product. For the whole agency, revenue (and the rebilled cost) and the provider cost come from the
    agency-wide daily rollups (≤ 5 rows a day each, whatever the number of sub-accounts)."""
    if dashboard_filter.subaccount_ids:
        return _figures_by(start=start, end=end, dashboard_filter=dashboard_filter, top=0)[0]
    rows = AgencyDayRollup.objects.filter(day__gte=start, day__lte=end)
    if dashboard_filter.product:
        rows = rows.filter(product=dashboard_filter.product)
    revenue = {row["product"]: (row["revenue"], row["cost"]) for row in rows.order_by().values("product").annotate(
        revenue=Sum("revenue"), cost=Sum("cost"))}
    if dashboard_filter.rebilled_only:
        cost = {product: rebilled for product, (_, rebilled) in revenue.items()}
    else:
        costs = AgencyCostDayRollup.objects.filter(day__gte=start, day__lte=end)
        if dashboard_filter.product:
            costs = costs.filter(product=dashboard_filter.product)
        cost = dict(costs.order_by().values("product").annotate(total=Sum("cost")).values_list("product", "total"))
    return {product: Figures(revenue=revenue.get(product, (ZERO, ZERO))[0] or ZERO, cost=cost.get(product) or ZERO)
            for product in sorted(set(revenue) | set(cost))}


def _top_subaccounts(*, start: date, end: date, dashboard_filter: DashboardFilter,
                     top: int | None) -> list[tuple[int, Figures]]:
    """The sub-accounts with the most revenue. For one whole month of every product they are read in revenue
    order off the monthly totals' index (50 rows, not 10,000 aggregated); otherwise aggregated."""
    months, spans = period_pieces(start, end)
    if top and len(months) == 1 and not spans and not dashboard_filter.product:
        totals = SubAccountMonthTotal.objects.filter(month=months[0])
        if dashboard_filter.subaccount_ids:
            totals = totals.filter(subaccount_id__in=dashboard_filter.subaccount_ids)
        rows = list(totals.order_by("-revenue", "subaccount_id").values_list("subaccount_id", "revenue", "cost")
                    [:top])
        if len(rows) == top:  # else fewer rebilled than shown: sub-accounts with only a cost fill the page
            ids = [subaccount_id for subaccount_id, _, _ in rows]
            if dashboard_filter.rebilled_only:
                costs = {subaccount_id: cost for subaccount_id, _, cost in rows}
            else:
                costs = dict(UsageCostMonthRollup.objects.filter(month=months[0], subaccount_id__in=ids).order_by()
                             .values("subaccount_id").annotate(total=Sum("cost")).values_list("subaccount_id",
                                                                                              "total"))
            return [(subaccount_id, Figures(revenue=revenue, cost=costs.get(subaccount_id) or ZERO))
                    for subaccount_id, revenue, _ in rows]
    if not dashboard_filter.product:
        return _span_figures(start=start, end=end, dashboard_filter=dashboard_filter, top=top)
    return _figures_by(start=start, end=end, dashboard_filter=dashboard_filter, top=top)[1]


def _total(figures: dict[str, Figures]) -> Figures:
    return Figures(revenue=sum((f.revenue for f in figures.values()), ZERO),
                   cost=sum((f.cost for f in figures.values()), ZERO))


def rebilling_dashboard(*, dashboard_filter: DashboardFilter, top: int | None = 50) -> Dashboard:
    start, end = dashboard_filter.start, dashboard_filter.end
    previous_start, previous_end = previous_period(start, end)
    by_product = _per_product(start=start, end=end, dashboard_filter=dashboard_filter)
    previous_by_product = _per_product(start=previous_start, end=previous_end, dashboard_filter=dashboard_filter)
    top_rows = _top_subaccounts(start=start, end=end, dashboard_filter=dashboard_filter, top=top)
    ids = [subaccount_id for subaccount_id, _ in top_rows]
    before: dict[int, Figures] = {}
    if ids:
        if dashboard_filter.product:
            _, previous_rows = _figures_by(start=previous_start, end=previous_end,
                                           dashboard_filter=dashboard_filter, top=None, only_ids=ids)
        else:
            previous_rows = _span_figures(start=previous_start, end=previous_end, dashboard_filter=dashboard_filter,
                                          top=None, only_ids=ids)
        before = dict(previous_rows)
    names = dict(SubAccount.objects.filter(pk__in=ids).values_list("pk", "name"))
    labels = dict(Product.choices)
    return Dashboard(
        start=start, end=end, previous_start=previous_start, previous_end=previous_end,
        total=_total(by_product), previous_total=_total(previous_by_product),
        per_product=[(labels.get(product, product), figures) for product, figures in sorted(by_product.items())],
        per_subaccount=[SubAccountFigures(subaccount_id=subaccount_id, name=names.get(subaccount_id, ""),
                                          current=figures, previous=before.get(subaccount_id, NOTHING))
                        for subaccount_id, figures in top_rows],
        daily=daily_usage_by_product(subaccount_ids=dashboard_filter.subaccount_ids or None, start=start, end=end,
                                     product=dashboard_filter.product),
    )
