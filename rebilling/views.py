"""Settings → Phone Integration and Settings → Rebilling, Manage Client's resell settings, and the bulk action.

Agency admins only; every id is looked up among the caller's agency's sub-accounts (404 otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agencies.plans import NextAction, RebillingState, plan_terms
from people.models import User
from rebill.access import agency_admin_required
from rebill.forms import add_service_errors
from rebilling.forms import AutoRechargeForm, BulkForm, MultipliersForm
from rebilling.sections import preview_rows, resell_context
from rebilling.selectors import (
    PhoneIntegrationRow,
    agency_multiplier_defaults,
    multiplier_rows,
    phone_integration_page,
    resell_section,
)
from rebilling.services import (
    BULK_OPERATIONS,
    agency_multipliers_set,
    auto_recharge_set,
    multipliers_set,
    rebilling_bulk,
    rebilling_switch_off,
    rebilling_switch_on,
)
from stripe_connect.selectors import current_agency
from subaccounts.models import SubAccount
from subaccounts.selectors import subaccount_for_agency_staff
from subaccounts.views import manage_context


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() else default


# Settings → Phone Integration --------------------------------------------------------------------------------------
_TONES = {RebillingState.ENABLED: " good", RebillingState.DISABLED: " bad"}
_MANAGE_CLIENT_PARTS = {NextAction.ADD_ACCOUNT_ADMIN: "#people", NextAction.ASK_FOR_CARD: "#billing",
                        NextAction.MANAGE_CLIENT: "#resell"}


@dataclass(frozen=True)
class _Line:
    """One row as the page prints it: worked out here once, so the template only prints (a page of 50 rows
    rendered through includes and per-row URL tags cost more than the query)."""

    subaccount_id: int
    name: str
    provider: str
    state: str
    state_label: str
    tone: str
    reason: str
    action: str
    action_label: str
    href: str


def _line(row: PhoneIntegrationRow, *, stripe_settings: str) -> _Line:
    decision = row.decision
    if decision.action == NextAction.CONNECT_STRIPE:
        href = stripe_settings
    elif decision.action == NextAction.UPGRADE_PLAN:
        href = ""
    else:
        href = (reverse("subaccounts:manage", args=[row.subaccount_id])
                + _MANAGE_CLIENT_PARTS.get(decision.action, "#phone-provider"))
    return _Line(subaccount_id=row.subaccount_id, name=row.name, provider=row.provider_label,
                 state=decision.state.value, state_label=str(decision.state.label),
                 tone=_TONES.get(decision.state, ""), reason=decision.reason, action=decision.action.value,
                 action_label=str(decision.action.label), href=href)


@agency_admin_required
@require_GET
def phone_integration(request: HttpRequest) -> HttpResponse:
    page = phone_integration_page(state=request.GET.get("state", ""), query=request.GET.get("q", "").strip()[:150],
                                  sort=request.GET.get("sort", "name"), page=_int(request.GET.get("page"), 1))

    def link(**changes: str | int) -> str:
        params: dict[str, str | int] = {"state": page.state, "q": page.query, "sort": page.sort, "page": 1, **changes}
        return "?" + urlencode({key: value for key, value in params.items() if value not in ("", 1)})

    filters = [("", "All", page.total, link(state=""))] + [
        (state.value, state.label, page.counts[state.value], link(state=state.value)) for state in RebillingState]
    sorts = {column: link(sort=f"-{column}" if page.sort == column else column)
             for column in ("name", "provider", "state")}
    stripe_settings = reverse("stripe_connect:settings")
    return render(request, "rebilling/phone_integration.html", {
        "page": page, "lines": [_line(row, stripe_settings=stripe_settings) for row in page.rows],
        "filters": filters, "sorts": sorts, "terms": plan_terms(current_agency().plan),
        "previous": link(page=page.page - 1) if page.page > 1 else "",
        "next": link(page=page.page + 1) if page.page < page.pages else "",
    })


# Settings → Rebilling (agency-wide default multipliers) ------------------------------------------------------------
@agency_admin_required
@require_http_methods(["GET", "POST"])
def rebilling_settings(request: HttpRequest) -> HttpResponse:
    terms = plan_terms(current_agency().plan)
    form = MultipliersForm(request.POST or None, initial_multipliers=agency_multiplier_defaults())
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                agency_multipliers_set(multipliers=form.multipliers(), by=_user(request))
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, "Default multipliers saved.")
                return redirect("rebilling:settings")
        status = 400
    return render(request, "rebilling/settings.html", {
        "form": form, "terms": terms, "rows": multiplier_rows(subaccount=None),
        "editable": terms.rebilling_available and terms.locked_multiplier is None,
    }, status=status)


# Manage Client → Phone System Resell Settings -----------------------------------------------------------------------
def _section(request: HttpRequest, subaccount: SubAccount, *, multipliers_form: MultipliersForm | None = None,
             recharge_form: AutoRechargeForm | None = None, error: str = "", status: int = 200) -> HttpResponse:
    """The section swapped in place (htmx); without htmx, back to Manage Client, or the page with the errors."""
    context = {**resell_context(subaccount=subaccount, multipliers_form=multipliers_form, recharge_form=recharge_form),
               "resell_error": error}
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "rebilling/_resell_section.html", context, status=status)
    if status == 200:
        return redirect(reverse("subaccounts:manage", args=[subaccount.pk]) + "#resell")
    return render(request, "subaccounts/manage.html", {**manage_context(request, subaccount), **context},
                  status=status)


@agency_admin_required
@require_POST
def resell_switch(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    subaccount = subaccount_for_agency_staff(user=_user(request), subaccount_id=subaccount_id)
    switch_on = request.POST.get("switch") == "on"
    try:
        if switch_on:
            rebilling_switch_on(subaccount=subaccount, by=_user(request))
        else:
            rebilling_switch_off(subaccount=subaccount, by=_user(request))
    except ValidationError as refusal:
        return _section(request, subaccount, error=f"Rebilling was not switched on: {refusal.messages[0]}",
                        status=400)
    if not request.htmx:  # type: ignore[attr-defined]
        messages.success(request, "Phone rebilling switched on." if switch_on else "Phone rebilling switched off.")
    return _section(request, subaccount)


def _save(request: HttpRequest, subaccount: SubAccount, *, form: MultipliersForm | AutoRechargeForm, what: str,
          save: Callable[[], object]) -> HttpResponse:
    """Save one of the section's forms through its service; its errors show next to its fields (or, when the
    service refuses the change as a whole, at the top of the section)."""
    if form.is_valid():
        try:
            save()
        except ValidationError as error:
            if not hasattr(error, "error_dict"):  # refused as a whole (e.g. locked on this plan)
                return _section(request, subaccount, error=f"{what} not saved: {error.messages[0]}", status=400)
            add_service_errors(form, error)
    if form.errors:
        if isinstance(form, MultipliersForm):
            return _section(request, subaccount, multipliers_form=form, status=400)
        return _section(request, subaccount, recharge_form=form, status=400)
    if not request.htmx:  # type: ignore[attr-defined]
        messages.success(request, f"{what} saved.")
    return _section(request, subaccount)


@agency_admin_required
@require_POST
def resell_multipliers(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    subaccount = subaccount_for_agency_staff(user=_user(request), subaccount_id=subaccount_id)
    form = MultipliersForm(request.POST)
    return _save(request, subaccount, form=form, what="Multipliers", save=lambda: multipliers_set(
        subaccount=subaccount, multipliers=form.multipliers(), by=_user(request)))


@agency_admin_required
@require_POST
def resell_auto_recharge(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    subaccount = subaccount_for_agency_staff(user=_user(request), subaccount_id=subaccount_id)
    form = AutoRechargeForm(request.POST)
    return _save(request, subaccount, form=form, what="Auto-recharge", save=lambda: auto_recharge_set(
        subaccount=subaccount, by=_user(request), **form.cleaned_data))


@agency_admin_required
@require_GET
def resell_preview(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    """What the client would pay at the multipliers being typed (nothing is saved)."""
    subaccount = subaccount_for_agency_staff(user=_user(request), subaccount_id=subaccount_id)
    section = resell_section(subaccount=subaccount)
    form = MultipliersForm(request.GET)
    form.is_valid()
    typed: dict[str, Decimal | None] = {}
    for row in section.multipliers:
        product = row.product.value
        if not section.multipliers_editable:
            typed[product] = row.in_force
        elif product in form.errors:
            typed[product] = None
        else:
            typed[product] = form.cleaned_data.get(product) or row.default
    return render(request, "rebilling/_preview.html", {"preview": preview_rows(typed)})


# Bulk (from the sub-account list) ---------------------------------------------------------------------------------
@agency_admin_required
@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    if not form.is_valid():
        return render(request, "rebilling/bulk_report.html", {"form": form, "outcomes": []}, status=400)
    outcomes = rebilling_bulk(subaccount_ids=form.cleaned_data["subaccounts"], operation=form.cleaned_data["operation"],
                              multipliers=form.multipliers(), by=_user(request))
    return render(request, "rebilling/bulk_report.html", {
        "form": form, "outcomes": outcomes, "operation": BULK_OPERATIONS[form.cleaned_data["operation"]],
        "applied": sum(outcome.applied for outcome in outcomes),
    })
