"""Sub-account pages: the agency's list, create/edit and Manage Client; the client's own dashboard."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from billing.selectors import manage_client_billing
from people.models import User
from people.services import invitation_send, invitation_token_make
from phone.selectors import provider_section, usage_for_member
from rebill.access import agency_admin_required, agency_staff_required
from rebill.forms import add_service_errors
from rebilling.forms import BulkForm
from rebilling.sections import resell_context
from rebilling.selectors import multipliers_editable
from subaccounts.forms import MembershipAddForm, SubAccountForm
from subaccounts.models import Membership, SubAccount
from subaccounts.selectors import (
    membership_for_member,
    subaccount_account_admins,
    subaccount_for_agency_staff,
    subaccount_for_manage_client,
    subaccount_memberships,
    subaccounts_for_agency_staff,
)
from subaccounts.services import membership_add, membership_remove, subaccount_create, subaccount_update


@agency_staff_required
def subaccount_list(request: HttpRequest) -> HttpResponse:
    subaccounts = subaccounts_for_agency_staff(user=request.user)  # type: ignore[arg-type]
    return render(request, "subaccounts/list.html", {
        "subaccounts": subaccounts, "bulk_form": BulkForm(), "bulk_multipliers_editable": multipliers_editable(),
    })


@agency_admin_required
@require_http_methods(["GET", "POST"])
def subaccount_new(request: HttpRequest) -> HttpResponse:
    form = SubAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subaccount = subaccount_create(by=request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Sub-account {subaccount.name} created.")
            return redirect("subaccounts:manage", subaccount_id=subaccount.pk)
    return render(request, "subaccounts/form.html", {"form": form, "subaccount": None})


@agency_admin_required
@require_http_methods(["GET", "POST"])
def subaccount_edit(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    subaccount = subaccount_for_agency_staff(user=request.user, subaccount_id=subaccount_id)  # type: ignore[arg-type]
    initial = {"name": subaccount.name, "contact_email": subaccount.contact_email, "phone": subaccount.phone}
    form = SubAccountForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            subaccount_update(subaccount=subaccount, by=request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Saved.")
            return redirect("subaccounts:manage", subaccount_id=subaccount.pk)
    return render(request, "subaccounts/form.html", {"form": form, "subaccount": subaccount})


def manage_context(request: HttpRequest, subaccount: SubAccount, *, member_form: MembershipAddForm | None = None
                   ) -> dict[str, Any]:
    """Everything Manage Client shows; the sections' own views re-render the page with their errors through it."""
    return {
        "subaccount": subaccount,
        "memberships": subaccount_memberships(subaccount=subaccount),
        "member_form": member_form or MembershipAddForm(),
        "client_billing": manage_client_billing(subaccount=subaccount),
        "phone_provider": provider_section(user=request.user, subaccount=subaccount),  # type: ignore[arg-type]
        **resell_context(subaccount=subaccount),
    }


@agency_admin_required
def subaccount_manage(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    """Manage Client: the client's billing, phone provider, rebilling and people."""
    subaccount = subaccount_for_manage_client(user=request.user, subaccount_id=subaccount_id)  # type: ignore[arg-type]
    return render(request, "subaccounts/manage.html", manage_context(request, subaccount))


@agency_admin_required
@require_POST
def member_add(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    subaccount = subaccount_for_agency_staff(user=request.user, subaccount_id=subaccount_id)  # type: ignore[arg-type]
    form = MembershipAddForm(request.POST)
    if form.is_valid():
        try:
            membership, needs_invitation = membership_add(
                subaccount=subaccount, by=request.user, **form.cleaned_data  # type: ignore[arg-type]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            if needs_invitation:
                _invite(request, membership)
            else:
                messages.success(request, f"{membership.user.email} added as {membership.get_role_display()}.")
            return redirect("subaccounts:manage", subaccount_id=subaccount.pk)
    return render(request, "subaccounts/manage.html", manage_context(request, subaccount, member_form=form), status=400)


def _invite(request: HttpRequest, membership: Membership) -> None:
    """Email the invitation once the membership is committed; a failed email is said, and can be sent again."""
    accept_path = reverse("people:invitation", args=[invitation_token_make(user=membership.user)])
    error = invitation_send(
        user=membership.user,
        accept_url=request.build_absolute_uri(accept_path),
        inviter=request.user,  # type: ignore[arg-type]
        place=membership.subaccount.name,
    )
    if error:
        messages.error(request, f"{membership.user.email} was added, but the invitation was not sent: {error} "
                                "Use \u201cSend invitation again\u201d below.")
    else:
        messages.success(request, f"Invitation sent to {membership.user.email}.")


@agency_admin_required
@require_POST
def member_invite(request: HttpRequest, subaccount_id: int, membership_id: int) -> HttpResponse:
    subaccount = subaccount_for_agency_staff(user=request.user, subaccount_id=subaccount_id)  # type: ignore[arg-type]
    membership = subaccount_memberships(subaccount=subaccount).filter(pk=membership_id).first()
    if membership is None:
        raise Http404("No such member")
    if membership.user.has_usable_password():
        messages.error(request, f"{membership.user.email} has already set a password.")
    else:
        _invite(request, membership)
    return redirect(reverse("subaccounts:manage", args=[subaccount.pk]) + "#people")


@agency_admin_required
@require_POST
def member_remove(request: HttpRequest, subaccount_id: int, membership_id: int) -> HttpResponse:
    subaccount = subaccount_for_agency_staff(user=request.user, subaccount_id=subaccount_id)  # type: ignore[arg-type]
    membership = subaccount_memberships(subaccount=subaccount).filter(pk=membership_id).first()
    if membership is None:
        raise Http404("No such member")
    membership_remove(membership=membership, by=request.user)  # type: ignore[arg-type]
    messages.success(request, f"{membership.user.email} removed.")
    return redirect("subaccounts:manage", subaccount_id=subaccount.pk)


@login_required
def subaccount_dashboard(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    membership = membership_for_member(user=user, subaccount_id=subaccount_id)
    return render(
        request,
        "subaccounts/dashboard.html",
        {
            "subaccount": membership.subaccount,
            "membership": membership,
            "usage": usage_for_member(membership=membership),
            "account_admins": subaccount_account_admins(subaccount=membership.subaccount),
        },
    )
