from typing import Any

from django.http import HttpRequest
from django.urls import reverse


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The navigation links the signed-in person may follow; nothing more is shown."""
    user = getattr(request, "user", None)
    tenant = getattr(request, "tenant", None)
    if user is None or not user.is_authenticated or tenant is None or tenant.is_platform:
        return {"nav_links": [], "agency": tenant}
    links: list[tuple[str, str]] = []
    if user.is_agency_staff:
        links.append(("Sub-accounts", reverse("subaccounts:list")))
    for subaccount in user.memberships.select_related("subaccount").order_by("subaccount__name"):
        links.append((subaccount.subaccount.name, reverse("subaccounts:dashboard", args=[subaccount.subaccount_id])))
    return {"nav_links": links, "agency": tenant}
