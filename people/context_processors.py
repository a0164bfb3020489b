from typing import Any

from django.http import HttpRequest
from django.urls import reverse


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The navigation links the signed-in person may follow; nothing more is shown."""
    user = getattr(request, "user", None)
    tenant = getattr(request, "tenant", None)
    if user is None or not user.is_authenticated or tenant is None or tenant.is_platform:
        return {"nav_links": [], "agency": tenant, "subaccount_switcher": None}
    links: list[tuple[str, str]] = []
    if user.is_agency_staff:
        links.append(("Sub-accounts", reverse("subaccounts:list")))
    if user.is_agency_admin:
        links.append(("Settings → Stripe", reverse("stripe_connect:settings")))
        links.append(("Settings → Phone Integration", reverse("rebilling:phone-integration")))
        links.append(("Settings → Rebilling", reverse("rebilling:settings")))
        links.append(("Settings → Billing", reverse("agency_wallets:settings-billing")))
        links.append(("Settings → Billing details", reverse("creditusage:dashboard")))
    switcher = _subaccount_switcher(request, user)
    if switcher and switcher["current_is_admin"]:
        # Company Billing of the sub-account being looked at, not one link per sub-account.
        links.append(("Company Billing", reverse("billing:company", args=[switcher["current"].pk])))
    return {"nav_links": links, "agency": tenant, "subaccount_switcher": switcher}


def _subaccount_switcher(request: HttpRequest, user: Any) -> dict[str, Any] | None:
    """One menu of the person's sub-accounts; the current one is the page's, or their only one."""
    from subaccounts.models import Membership  # a tenant app; people is also shared

    if user.is_agency_staff:  # never a member of a client (membership_add refuses them): no query needed
        return None
    memberships = list(user.memberships.select_related("subaccount").order_by("subaccount__name", "pk"))
    if not memberships:
        return None
    match = getattr(request, "resolver_match", None)
    page_subaccount_id = match.kwargs.get("subaccount_id") if match else None
    current = next((m for m in memberships if m.subaccount_id == page_subaccount_id), None)
    if current is None and len(memberships) == 1:
        current = memberships[0]
    return {
        "current": current.subaccount if current else None,
        "current_is_admin": current is not None and current.role == Membership.Role.ACCOUNT_ADMIN,
        "choices": [(m.subaccount.name, reverse("subaccounts:dashboard", args=[m.subaccount_id]),
                     current is not None and m.pk == current.pk) for m in memberships],
    }
