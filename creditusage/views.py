"""See details (Company Billing, the client), usage details (Manage Client, the agency), the rebilling dashboard
and the reconciliation export (agency settings). Thin: each view proves the caller may see the sub-account
(404 otherwise), then asks the selectors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from creditusage import selectors
from creditusage.agency_wallet import (
    agency_wallet_entries,
    agency_wallet_entry_description,
    agency_wallet_entry_reference,
    agency_wallet_of_current_agency,
    agency_wallet_page,
    agency_wallet_totals,
)
from creditusage.charts import daily_stacked_svg
from creditusage.dashboard import rebilling_dashboard as rebilling_dashboard_read
from creditusage.exports import (
    AGENCY_HEADER,
    AGENCY_WALLET_HEADER,
    CLIENT_HEADER,
    RECONCILIATION_HEADER,
    agency_wallet_rows,
    csv_response,
    line_rows,
    money_cell,
    reconciliation_rows,
    text_cell,
)
from creditusage.forms import (
    AgencyWalletFilterForm,
    DashboardFilterForm,
    DetailsSharingForm,
    EntryFilterForm,
    SpendAlertPolicyForm,
)
from creditusage.services import (
    details_sharing,
    details_sharing_update,
    spend_alert_pause_lift,
    spend_alert_policy,
    spend_alert_policy_update,
)
from people.models import User
from rebill.access import agency_admin_required
from subaccounts.models import SubAccount
from subaccounts.selectors import subaccount_for_agency_staff, subaccounts_for_agency_staff

CHART_DAYS = 31


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _details(request: HttpRequest, subaccount: SubAccount, *, for_agency: bool, template: str,
             extra: dict[str, Any] | None = None) -> HttpResponseBase:
    form = EntryFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, template, {"subaccount": subaccount, "form": form}, status=400)
    entry_filter = form.entry_filter() if form.is_bound else selectors.EntryFilter()
    wallet = selectors.wallet_of(subaccount=subaccount)
    entries = selectors.wallet_entries_filtered(wallet=wallet, entry_filter=entry_filter)
    if request.GET.get("format") == "csv":
        return csv_response(filename=f"transactions-{subaccount.pk}.csv",
                            header=AGENCY_HEADER if for_agency else CLIENT_HEADER,
                            rows=line_rows(entries=entries, for_agency=for_agency))
    page = selectors.wallet_entries_page(entries=entries, after=form.cleaned_data.get("after") if form.is_bound
                                         else None)
    make = selectors.agency_line if for_agency else selectors.client_line
    chart_end = entry_filter.end or timezone.now().date()
    chart_start = max(entry_filter.start or chart_end - timedelta(days=CHART_DAYS - 1),
                      chart_end - timedelta(days=366))
    chart = daily_stacked_svg(
        days=selectors.daily_usage_by_product(subaccount_ids=[subaccount.pk], start=chart_start, end=chart_end,
                                              product=entry_filter.product),
        start=chart_start, end=chart_end)
    query = request.GET.copy()
    query.pop("after", None)
    query.pop("format", None)
    next_query = query.copy()
    if page.next_cursor is not None:
        next_query["after"] = page.next_cursor.encode()
    context: dict[str, Any] = {
        "subaccount": subaccount, "form": form, "lines": [make(entry) for entry in page.entries],
        "totals": selectors.entry_totals(wallet=wallet, entry_filter=entry_filter), "for_agency": for_agency,
        "chart": chart,
        "csv_query": (query.urlencode() + "&" if query else "") + "format=csv",
        "next_query": next_query.urlencode() if page.next_cursor else "",
        "first_query": query.urlencode(), "is_first_page": not request.GET.get("after"), **(extra or {}),
    }
    return render(request, template, context)


@login_required
def client_details(request: HttpRequest, subaccount_id: int) -> HttpResponseBase:
    """Account admins; account users too, read-only, when the agency allows it (the page has no write action)."""
    membership = selectors.details_membership(user=_user(request), subaccount_id=subaccount_id)
    return _details(request, membership.subaccount, for_agency=False, template="creditusage/client_details.html",
                    extra={"membership": membership})


@agency_admin_required  # type: ignore[arg-type]  # a CSV streams: StreamingHttpResponse
def agency_usage_details(request: HttpRequest, subaccount_id: int) -> HttpResponseBase:
    subaccount = subaccount_for_agency_staff(user=_user(request), subaccount_id=subaccount_id)
    return _details(request, subaccount, for_agency=True, template="creditusage/agency_usage_details.html")


@agency_admin_required  # type: ignore[arg-type]  # a CSV streams: StreamingHttpResponse
def rebilling_dashboard(request: HttpRequest) -> HttpResponseBase:
    form = DashboardFilterForm(request.GET or None, subaccounts=subaccounts_for_agency_staff(user=_user(request)))
    if request.GET and not form.is_valid():
        return render(request, "creditusage/dashboard.html", {"form": form}, status=400)
    dashboard_filter = form.dashboard_filter(timezone.now().date())
    as_csv = request.GET.get("format") == "csv"
    dashboard = rebilling_dashboard_read(dashboard_filter=dashboard_filter, top=None if as_csv else 50)
    if as_csv:
        rows = ([str(row.subaccount_id), text_cell(row.name), money_cell(row.current.revenue),
                 money_cell(row.current.cost), money_cell(row.current.profit),
                 "" if row.current.margin is None else f"{row.current.margin:f}",
                 money_cell(row.previous.revenue),
                 "" if row.revenue_change is None else f"{row.revenue_change:f}"]
                for row in dashboard.per_subaccount)
        return csv_response(filename=f"rebilling-{dashboard.start:%Y-%m-%d}-{dashboard.end:%Y-%m-%d}.csv",
                            header=["subaccount_id", "subaccount", "revenue", "cost", "profit", "margin_percent",
                                    "previous_month_revenue", "revenue_change_percent"], rows=rows)
    query = request.GET.copy()
    query.pop("format", None)
    form.offer([(row.subaccount_id, row.name) for row in dashboard.per_subaccount])
    chart = daily_stacked_svg(days=dashboard.daily, start=dashboard.start, end=dashboard.end,
                              title="Rebilled usage per day")
    return render(request, "creditusage/dashboard.html", {
        "form": form, "dashboard": dashboard, "chart": chart, "filter": dashboard_filter,
        "policy_form": SpendAlertPolicyForm(instance=spend_alert_policy()),
        "sharing_form": DetailsSharingForm(instance=details_sharing()),
        "csv_query": (query.urlencode() + "&" if query else "") + "format=csv",
    })


@agency_admin_required  # type: ignore[arg-type]  # a CSV streams: StreamingHttpResponse
def reconciliation_export(request: HttpRequest) -> HttpResponseBase:
    """Every wallet entry of the agency for a month (default: last month), to reconcile with the Stripe payouts
    and the provider's bill."""
    form = DashboardFilterForm(request.GET or None, subaccounts=SubAccount.objects.none())
    if request.GET and not form.is_valid():
        return HttpResponse("Give the month as YYYY-MM.", status=400, content_type="text/plain")
    today = timezone.now().date()
    month = (form.cleaned_data.get("month") if form.is_bound else None) or (today.replace(day=1) - timedelta(days=1))
    start, end = selectors.month_bounds(month)
    return csv_response(filename=f"reconciliation-{start:%Y-%m}.csv", header=RECONCILIATION_HEADER,
                        rows=reconciliation_rows(selectors.reconciliation_entries(start=start, end=end)))




@agency_admin_required
@require_POST
def spend_alert_settings(request: HttpRequest) -> HttpResponse:
    form = SpendAlertPolicyForm(request.POST, instance=spend_alert_policy())
    if form.is_valid():
        try:
            spend_alert_policy_update(enabled=form.cleaned_data["enabled"], multiple=form.cleaned_data["multiple"],
                                      floor=form.cleaned_data["floor"], auto_pause=form.cleaned_data["auto_pause"],
                                      by=_user(request))
        except ValidationError as refusal:
            form.add_error(None, refusal)
        else:
            messages.success(request, "Spend alert settings saved.")
            return redirect("creditusage:dashboard")
    return render(request, "creditusage/spend_alert_settings.html", {"policy_form": form}, status=400)


@agency_admin_required
@require_POST
def details_sharing_settings(request: HttpRequest) -> HttpResponse:
    form = DetailsSharingForm(request.POST, instance=details_sharing())
    if not form.is_valid():
        return HttpResponse("Bad request.", status=400, content_type="text/plain")
    details_sharing_update(account_users_may_view=form.cleaned_data["account_users_may_view"], by=_user(request))
    messages.success(request, "Saved: who may see clients' usage details.")
    return redirect("creditusage:dashboard")


@agency_admin_required  # type: ignore[arg-type]  # a CSV streams: StreamingHttpResponse
def agency_wallet_details(request: HttpRequest) -> HttpResponseBase:
    """Settings → Billing → See details: the agency's wallet with the platform, newest first."""
    form = AgencyWalletFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, "creditusage/agency_wallet.html", {"form": form}, status=400)
    entries = agency_wallet_entries(wallet_filter=form.wallet_filter())
    if request.GET.get("format") == "csv":
        return csv_response(filename="platform-wallet.csv", header=AGENCY_WALLET_HEADER,
                            rows=agency_wallet_rows(entries))
    page = agency_wallet_page(entries=entries, after=form.cleaned_data.get("after") if form.is_bound else None)
    query = request.GET.copy()
    query.pop("after", None)
    query.pop("format", None)
    next_query = query.copy()
    if page.next_after is not None:
        next_query["after"] = str(page.next_after)
    return render(request, "creditusage/agency_wallet.html", {
        "form": form, "wallet": agency_wallet_of_current_agency(), "totals": agency_wallet_totals(entries=entries),
        "lines": [(entry, agency_wallet_entry_description(entry), agency_wallet_entry_reference(entry))
                  for entry in page.entries],
        "csv_query": (query.urlencode() + "&" if query else "") + "format=csv",
        "next_query": next_query.urlencode() if page.next_after is not None else "",
        "first_query": query.urlencode(), "is_first_page": not request.GET.get("after"),
    })


@agency_admin_required
@require_POST
def spend_alert_resume_view(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    """Resume a sub-account a spend alert paused (from Phone Integration or Manage Client)."""
    subaccount = subaccount_for_agency_staff(user=_user(request), subaccount_id=subaccount_id)
    try:
        spend_alert_pause_lift(subaccount=subaccount, by=_user(request))
    except ValidationError as refusal:
        messages.error(request, " ".join(refusal.messages))
    else:
        messages.success(request, f"{subaccount.name}'s phone usage is being resumed.")
    if request.POST.get("back") == "manage":
        return redirect("subaccounts:manage", subaccount_id=subaccount.pk)
    return redirect("rebilling:phone-integration")
