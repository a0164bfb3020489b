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
    if user.is_agency_admin:
        links.append(("Settings → Stripe", reverse("stripe_connect:settings")))
        links.append(("Settings → Phone Integration", reverse("rebilling:phone-integration")))
        links.append(("Settings → Rebilling", reverse("rebilling:settings")))
    # Company Billing: only for the sub-accounts the person is an account admin of.
    from subaccounts.models import Membership  # a tenant app; people is also shared

    for admin_of in user.memberships.filter(role=Membership.Role.ACCOUNT_ADMIN).select_related("subaccount").order_by(
            "subaccount__name"):
        links.append((f"Company Billing · {admin_of.subaccount.name}",
                      reverse("billing:company", args=[admin_of.subaccount_id])))
    return {"nav_links": links, "agency": tenant}
