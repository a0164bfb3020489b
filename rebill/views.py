from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import redirect, render
from django.templatetags.static import static

from subaccounts.selectors import subaccounts_for_member


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_agency_staff:  # type: ignore[union-attr]
        return redirect("subaccounts:list")
    subaccounts = list(subaccounts_for_member(user=user))  # type: ignore[arg-type]
    if len(subaccounts) == 1:
        return redirect("subaccounts:dashboard", subaccount_id=subaccounts[0].pk)
    return render(request, "home.html", {"subaccounts": subaccounts})


def platform_home(request: HttpRequest) -> HttpResponse:
    return render(request, "platform_home.html")


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every domain (the admin's pages have no icon link of ours)."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))
