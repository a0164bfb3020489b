from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, getcontext
from typing import Any

from django import template
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import floatformat
from django.utils import timezone

from creditusage.selectors import account_users_may_view_details, spend_alerts_paused, spend_alerts_recent
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
