from typing import Any

from django import template
from django.utils import timezone

from creditusage.selectors import account_users_may_view_details, spend_alerts_paused, spend_alerts_recent
from subaccounts.models import SubAccount

register = template.Library()


@register.inclusion_tag("creditusage/_spend_alerts.html")
def spend_alerts() -> dict[str, Any]:
    """The last week's spend alerts, for Settings → Phone Integration."""
    return {"alerts": list(spend_alerts_recent(today=timezone.now().date()).select_related("subaccount")[:20])}


@register.simple_tag
def account_users_see_details() -> bool:
    """Whether the agency lets account users read their sub-account's See details."""
    return account_users_may_view_details()


@register.inclusion_tag("creditusage/_spend_alert_pause.html")
def spend_alert_pause(subaccount: SubAccount) -> dict[str, Any]:
    """On Manage Client: the spend alerts pausing this sub-account, with a way to resume it."""
    return {"subaccount": subaccount, "alerts": list(spend_alerts_paused(subaccount_id=subaccount.pk))}
