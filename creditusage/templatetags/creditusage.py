from typing import Any

from django import template
from django.utils import timezone

from creditusage.selectors import spend_alerts_recent

register = template.Library()


@register.inclusion_tag("creditusage/_spend_alerts.html")
def spend_alerts() -> dict[str, Any]:
    """The last week's spend alerts, for Settings → Phone Integration."""
    return {"alerts": list(spend_alerts_recent(today=timezone.now().date()).select_related("subaccount")[:20])}
