"""Reads for the agency's rebilling dashboard (Settings → Billing → See details): revenue, cost, profit and margin
in total, per product and per sub-account with the change from the same days a month before.

Revenue is what was rebilled to clients (wallet entries, via the rollups the rating keeps); cost is the agency's
cost of *every* sub-account's usage, rebilled or not (usage deltas, via the rollups their trigger keeps) — or,
with "rebilled only", the cost of the usage that was rebilled. Agency-wide figures are read from the agency's daily
rollups; per sub-account, a period is read as a few aligned spans of days (whole months, and ≤ 5 spans for each
month it takes part of) from the span totals (of every product, or of the one filtered on), and the top sub-accounts
are found from each span's leaders: never the ledger, never the deltas.
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
    SubAccountProductCostSpanTotal,
    SubAccountProductSpanTotal,
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


def _span_tables(product: str) -> tuple[str, str, str]:
    """The span totals to read (revenue and rebilled cost; provider cost) and the condition on a span's rows."""
    if product:
        return (SubAccountProductSpanTotal._meta.db_table, SubAccountProductCostSpanTotal._meta.db_table,
                "span_days = %s AND span_start = %s AND product = %s")
    return (SubAccountSpanTotal._meta.db_table, SubAccountCostSpanTotal._meta.db_table,
            "span_days = %s AND span_start = %s")


def _span_params(days: int, first: date, product: str) -> list[Any]:
    return [days, first, product] if product else [days, first]


def _span_figures(*, start: date, end: date, dashboard_filter: DashboardFilter,
                  top: int | None) -> list[tuple[int, Figures]]:
    """Every sub-account of the agency, read off the span totals (of every product, or of the one filtered on): a
    few rows per sub-account for any range (by revenue, then cost, at most `top`)."""
    spans = period_spans(start, end)
    if not spans:
        return []
    revenue_table, cost_table, span_rows = _span_tables(dashboard_filter.product)

    def summed(table: str, columns: list[str], params: list[Any]) -> str:
        # One index range per span (span_days, span_start[, product]): never a scan of the table.
        part = f"SELECT {', '.join(['subaccount_id', *columns])} FROM {table} WHERE {span_rows}"  # noqa: S608
        for days, first in spans:
            params += _span_params(days, first, dashboard_filter.product)
        sums = ", ".join(f"sum({column}) AS {column}" for column in columns)
        return f"SELECT subaccount_id, {sums} FROM ({' UNION ALL '.join([part] * len(spans))}) s GROUP BY 1"  # noqa: S608

    params: list[Any] = []
    revenue_sql = summed(revenue_table, ["revenue", "cost"], params)
    limit = "" if top is None else f" LIMIT {int(top)}"
    if dashboard_filter.rebilled_only:
        sql = f"SELECT subaccount_id, revenue, cost FROM ({revenue_sql}) r ORDER BY 2 DESC, 3 DESC, 1{limit}"  # noqa: S608
    else:
        cost_sql = summed(cost_table, ["cost"], params)
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


def _figures_of(*, ids: list[int], start: date, end: date,
                dashboard_filter: DashboardFilter) -> list[tuple[int, Figures]]:
    """The sub-accounts `ids` (those with usage in the range), by revenue then cost: each one's row of each span
    looked up by its key, so the work is ids × spans whatever the agency's size and whatever the planner guesses of
    a span's size (OFFSET 0 keeps each lookup a lookup)."""
    spans = period_spans(start, end)
    if not spans or not ids:
        return []
    revenue_table, cost_table, _ = _span_tables(dashboard_filter.product)
    product = " AND product = %(product)s" if dashboard_filter.product else ""

    def lookup(table: str, columns: str, alias: str) -> str:
        return (f"LEFT JOIN LATERAL (SELECT {columns} FROM {table} WHERE span_days = p.days"  # noqa: S608
                f" AND span_start = p.first AND subaccount_id = i.id{product} OFFSET 0) {alias} ON true")

    if dashboard_filter.rebilled_only:
        figures, joins, used = "sum(r.revenue), sum(r.cost)", lookup(revenue_table, "revenue, cost", "r"), \
            "count(r.revenue) > 0"
    else:
        figures = "coalesce(sum(r.revenue), 0), coalesce(sum(c.cost), 0)"
        joins = f"{lookup(revenue_table, 'revenue', 'r')} {lookup(cost_table, 'cost', 'c')}"
        used = "count(r.revenue) + count(c.cost) > 0"
    sql = f"""
        SELECT i.id, {figures}
        FROM unnest(%(ids)s::bigint[]) AS i(id)
        CROSS JOIN unnest(%(days)s::int[], %(firsts)s::date[]) AS p(days, first)
        {joins}
        GROUP BY i.id HAVING {used}
        ORDER BY 2 DESC, 3 DESC, 1"""  # noqa: S608 — only our own SQL is formatted in
    params: dict[str, Any] = {"ids": ids, "days": [days for days, _ in spans], "firsts": [first for _, first in spans],
              "product": dashboard_filter.product}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(subaccount_id, Figures(revenue=revenue, cost=cost)) for subaccount_id, revenue, cost in cursor]


def _top_by_threshold(*, start: date, end: date, dashboard_filter: DashboardFilter,
                      top: int) -> list[tuple[int, Figures]] | None:
    """The `top` sub-accounts by revenue without summing every sub-account's spans (Fagin's threshold algorithm):
    each span's leaders are read off its revenue-ordered index (its `top` first, ties included); whoever leads no
    span has, in each span, less than that span's last leader — so less revenue in all than the sum of those. The
    leaders' exact figures are summed; if `top` of them reach that sum, no one else can rank among them. None when
    the bound does not settle the ranking (the caller then sums every sub-account)."""
    spans = period_spans(start, end)
    if not spans:
        return None
    table, _, span_rows = _span_tables(dashboard_filter.product)
    part = (f"(SELECT %s::int AS span, subaccount_id, revenue FROM {table} WHERE {span_rows}"  # noqa: S608
            " ORDER BY revenue DESC FETCH FIRST %s ROWS WITH TIES)")  # only our own table name is formatted in
    params: list[Any] = []
    for number, (days, first) in enumerate(spans):
        params += [number, *_span_params(days, first, dashboard_filter.product), top]
    leaders: set[int] = set()
    last_of_span: dict[int, Decimal] = {}
    counted: dict[int, int] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        # Read down the revenue index, never sort a whole span: whatever a span's size, the planner cannot
        # mistake it for a small one. LOCAL: this transaction only.
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(" UNION ALL ".join([part] * len(spans)), params)
        for span, subaccount_id, revenue in cursor:
            leaders.add(subaccount_id)
            last_of_span[span] = min(revenue, last_of_span.get(span, revenue))
            counted[span] = counted.get(span, 0) + 1
    # A span with fewer rows than `top`, or whose last leader has no revenue, bounds no one strictly (the others'
    # nothing there could tie with it): then only summing everyone settles the ranking.
    if len(counted) < len(spans) or any(counted[span] < top or last_of_span[span] <= 0 for span in counted):
        return None
    bound = sum(last_of_span.values(), ZERO)  # everyone else's revenue is below it
    ranked = _figures_of(ids=sorted(leaders), start=start, end=end, dashboard_filter=dashboard_filter)
    if len(ranked) < top or ranked[top - 1][1].revenue < bound:
        return None
    return ranked[:top]


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


def _per_product_of_subaccounts(*, start: date, end: date,
                                dashboard_filter: DashboardFilter) -> dict[str, Figures]:
    """Per product, for the sub-accounts filtered on, in one pass over their rollups."""
    params: list[Any] = []
    source = _source_sql(start=start, end=end, dashboard_filter=dashboard_filter, params=params)
    sql = f"SELECT product, sum(revenue), sum(cost) FROM ({source}) s GROUP BY product"  # noqa: S608 — our own SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {product: Figures(revenue=revenue or ZERO, cost=cost or ZERO)
                for product, revenue, cost in cursor.fetchall()}


def _per_product(*, start: date, end: date, dashboard_filter: DashboardFilter) -> dict[str, Figures]:
    """Per product. For the whole agency, revenue (and the rebilled cost) and the provider cost come from the
    agency-wide daily rollups (≤ 5 rows a day each, whatever the number of sub-accounts)."""
    if dashboard_filter.subaccount_ids:
        return _per_product_of_subaccounts(start=start, end=end, dashboard_filter=dashboard_filter)
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
    order off the monthly totals' index (50 rows, not 10,000 aggregated); for sub-accounts filtered on, looked up;
    for any other range of the whole agency, found from each span's leaders, or (every row asked for, or leaders
    that do not settle it) every sub-account summed."""
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
    if dashboard_filter.subaccount_ids:
        return _figures_of(ids=dashboard_filter.subaccount_ids, start=start, end=end,
                           dashboard_filter=dashboard_filter)[:top]
    if top:
        leaders = _top_by_threshold(start=start, end=end, dashboard_filter=dashboard_filter, top=top)
        if leaders is not None:
            return leaders
    return _span_figures(start=start, end=end, dashboard_filter=dashboard_filter, top=top)


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
        before = dict(_figures_of(ids=ids, start=previous_start, end=previous_end, dashboard_filter=dashboard_filter))
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
