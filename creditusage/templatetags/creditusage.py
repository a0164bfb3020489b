from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, getcontext
from typing import Any

from django import template
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from creditusage.dashboard import SubAccountFigures
from creditusage.selectors import (
    AgencyLine,
    Line,
    account_users_may_view_details,
    spend_alerts_paused,
    spend_alerts_recent,
)
from subaccounts.models import SubAccount

register = template.Library()


@register.inclusion_tag("creditusage/_spend_alerts.html")
def spend_alerts() -> dict[str, Any]:
    """The last week's spend alerts, for Settings → Phone Integration."""
    return {"alerts": list(spend_alerts_recent(today=timezone.now().date()).select_related("subaccount")[:20])}


# A page of transactions prints ~300 numbers and 50 dates: Django's floatformat and date filters cost more than the
# page's queries. These print exactly what `floatformat:<places>` and `date:"Y-m-d H:i"` print here (no thousand
# separator, "." for decimals) for the values a ledger holds, and defer to Django's filters for anything else.
@register.filter(is_safe=True)
def fixed(value: Any, places: int | str) -> str:
    """`floatformat:<places>` of a finite Decimal or int: `places` decimals, rounded half up; negative `places`
    prints no decimals at all for a whole number."""
    places = int(places)
    if isinstance(value, bool) or not isinstance(value, Decimal | int) or (
            isinstance(value, Decimal) and not value.is_finite()):
        return floatformat(value, places)
    value = Decimal(value)
    if places <= 0 and value == value.to_integral_value():
        return str(int(value))
    rounded = value.quantize(Decimal(1).scaleb(-abs(places)), ROUND_HALF_UP,
                             Context(prec=max(getcontext().prec, abs(places) + len(str(abs(int(value)))) + 1)))
    return ("-" if rounded < 0 else "") + f"{abs(rounded):f}"


@register.filter(expects_localtime=True)
def minute(value: Any) -> str:
    """`date:"Y-m-d H:i"` of a datetime (already in the current time zone, as the template engine hands it)."""
    if not isinstance(value, datetime):
        return date_filter(value, "Y-m-d H:i")
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}"


@register.simple_tag
def account_users_see_details() -> bool:
    """Whether the agency lets account users read their sub-account's See details."""
    return account_users_may_view_details()


@register.inclusion_tag("creditusage/_spend_alert_pause.html")
def spend_alert_pause(subaccount: SubAccount) -> dict[str, Any]:
    """On Manage Client: the spend alerts pausing this sub-account, with a way to resume it."""
    return {"subaccount": subaccount, "alerts": list(spend_alerts_paused(subaccount_id=subaccount.pk))}


# The two tables of 50 rows below are written out here: as template loops, their ~700 variable and tag nodes took
# about half of each page's server time. The cells are what the templates printed, every text escaped.
@register.simple_tag
def transaction_rows(lines: list[Line], for_agency: bool) -> SafeString:
    """The rows of See details' transactions table (with the agency's cost, multiplier and profit for the agency)."""
    if not lines:
        return format_html('<tr><td colspan="{}">No transactions match this filter.</td></tr>', 12 if for_agency else 9)
    rows = []
    for line in lines:
        cells = [
            f"<tr><td>{minute(timezone.localtime(line.created_at))}</td><td>{escape(line.kind)}</td>"
            f"<td>{escape(line.product)}</td><td>{escape(line.description)}</td>"
            f'<td class="num">{"" if line.units is None else fixed(line.units, -6)}</td>'
            f'<td class="num">{"" if line.unit_price is None else "$" + fixed(line.unit_price, -6)}</td>'
            f'<td class="num" data-amount="{line.amount:f}">${fixed(line.amount, 2)}</td>'
            f'<td class="num">${fixed(line.balance_after, 2)}</td><td>{escape(line.reference)}</td>']
        if for_agency and isinstance(line, AgencyLine):
            cells.append(
                f'<td class="num">{"" if line.cost is None else "$" + fixed(line.cost, -6)}</td>'
                f'<td class="num">{"" if line.multiplier is None else fixed(line.multiplier, 4) + "x"}</td>'
                f'<td class="num">{"" if line.profit is None else "$" + fixed(line.profit, -6)}</td>')
        cells.append("</tr>")
        rows.append("".join(cells))
    return mark_safe("\n".join(rows))  # noqa: S308  # every text above is escaped; numbers are ours


@register.simple_tag
def subaccount_figure_rows(rows: list[SubAccountFigures]) -> SafeString:
    """The rows of the rebilling dashboard's per-sub-account table."""
    if not rows:
        return mark_safe('<tr><td colspan="7">No usage in this period.</td></tr>')
    # One reverse for the table: the rows' links differ only by the sub-account's id.
    before_id, _, after_id = reverse("creditusage:agency-details", args=[0]).rpartition("/0/")
    html = []
    for row in rows:
        figures, change = row.current, row.revenue_change
        html.append(
            f'<tr data-subaccount="{row.subaccount_id}"><td>{escape(row.name)}</td>'
            f'<td class="num">${fixed(figures.revenue, 2)}</td><td class="num">${fixed(figures.cost, 2)}</td>'
            f'<td class="num">${fixed(figures.profit, 2)}</td>'
            f'<td class="num">{"" if figures.margin is None else f"{figures.margin:f}%"}</td>'
            f'<td class="num">{"new" if change is None else f"{change:f}%"}</td>'
            f'<td><a href="{before_id}/{row.subaccount_id}/{after_id}">Details</a></td></tr>')
    return mark_safe("".join(html))  # noqa: S308  # every text above is escaped; numbers are ours
