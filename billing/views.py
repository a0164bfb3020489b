"""Company Billing (account admins), the payment link, and Manage Client's card requests (agency admins)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.forms import CustomerLinkForm, CustomerSearchForm
from billing.models import CardSetup
from billing.selectors import (
    billing_profile,
    card_setup_client_secret,
    card_setup_for_account_admin,
    card_setup_refusal_for_client,
    company_billing_membership,
    manage_client_billing,
    payment_link_is_spent,
    payment_link_refusal_for,
    payment_link_request,
    stripe_customers_find,
)
from billing.services import (
    CardNotConfirmed,
    card_remove,
    card_setup_complete,
    card_setup_start,
    payment_link_open,
    payment_link_send,
    stripe_customer_link,
)
from people.models import User
from rebill.access import agency_admin_required
from stripe_connect.gateway import publishable_key, stripe_js_url
from subaccounts.selectors import subaccount_for_agency_staff


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


# Company Billing --------------------------------------------------------------------------------------------------
@login_required
@require_GET
def company_billing(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    membership = company_billing_membership(user=_user(request), subaccount_id=subaccount_id)
    from wallets.selectors import wallet_summary  # wallets imports billing's models

    return render(request, "billing/company_billing.html", {
        "subaccount": membership.subaccount, "profile": billing_profile(subaccount=membership.subaccount),
        "card_refusal": card_setup_refusal_for_client(subaccount=membership.subaccount),
        "summary": wallet_summary(subaccount=membership.subaccount),
    })


@login_required
@require_POST
def card_setup_start_view(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    membership = company_billing_membership(user=_user(request), subaccount_id=subaccount_id)
    refusal = card_setup_refusal_for_client(subaccount=membership.subaccount)
    if refusal:
        messages.error(request, refusal)
        return redirect("billing:company", subaccount_id=subaccount_id)
    try:
        setup = card_setup_start(subaccount=membership.subaccount, by=_user(request))
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return redirect("billing:company", subaccount_id=subaccount_id)
    return redirect("billing:card-setup", subaccount_id=subaccount_id, setup_id=setup.pk)


@login_required
@require_GET
def card_setup_page(request: HttpRequest, subaccount_id: int, setup_id: int) -> HttpResponse:
    membership = company_billing_membership(user=_user(request), subaccount_id=subaccount_id)
    setup = card_setup_for_account_admin(membership=membership, setup_id=setup_id)
    if setup.status != CardSetup.Status.STARTED:
        return redirect("billing:company", subaccount_id=subaccount_id)
    try:
        client_secret = card_setup_client_secret(setup=setup)
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return redirect("billing:company", subaccount_id=subaccount_id)
    profile = billing_profile(subaccount=membership.subaccount)
    return card_form_render(request, card_for=membership.subaccount.name, card_purpose="future phone-usage charges",
                            has_card=bool(profile and profile.has_card), client_secret=client_secret,
                            stripe_account_id=setup.stripe_account_id,
                            done_url=reverse("billing:card-done", args=[subaccount_id, setup.pk]),
                            cancel_url=reverse("billing:company", args=[subaccount_id]))


def card_form_render(request: HttpRequest, *, card_for: str, card_purpose: str, has_card: bool, client_secret: str,
                     stripe_account_id: str, done_url: str, cancel_url: str) -> HttpResponse:
    """The card form; `stripe_account_id` empty: the card is saved on the platform's own account."""
    return render(request, "billing/card_setup.html", {
        "card_for": card_for, "card_purpose": card_purpose, "has_card": has_card, "client_secret": client_secret,
        "stripe_account_id": stripe_account_id, "done_url": done_url, "cancel_url": cancel_url,
        "publishable_key": publishable_key(), "stripe_js_url": stripe_js_url(),
    })


@login_required
@require_POST
def card_setup_done(request: HttpRequest, subaccount_id: int, setup_id: int) -> HttpResponse:
    """Stripe.js confirmed the card in the browser; we check with Stripe before believing it."""
    membership = company_billing_membership(user=_user(request), subaccount_id=subaccount_id)
    setup = card_setup_for_account_admin(membership=membership, setup_id=setup_id)
    try:
        setup = card_setup_complete(setup=setup, actor=_user(request).email)
    except CardNotConfirmed as error:
        messages.error(request, str(error))
        return redirect("billing:card-setup", subaccount_id=subaccount_id, setup_id=setup_id)
    if setup.status == CardSetup.Status.SUCCEEDED:
        messages.success(request, "Your card is saved.")
    else:
        messages.error(request, "The card was not saved. Please try again.")
    return redirect("billing:company", subaccount_id=subaccount_id)


@login_required
@require_http_methods(["GET", "POST"])
def card_remove_view(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    """GET asks for confirmation; POST removes the card."""
    membership = company_billing_membership(user=_user(request), subaccount_id=subaccount_id)
    if request.method == "GET":
        profile = billing_profile(subaccount=membership.subaccount)
        if profile is None or not profile.has_card:
            return redirect("billing:company", subaccount_id=subaccount_id)
        return render(request, "billing/card_remove_confirm.html",
                      {"subaccount": membership.subaccount, "profile": profile})
    try:
        card_remove(subaccount=membership.subaccount, by=_user(request))
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, "Card removed.")
    return redirect("billing:company", subaccount_id=subaccount_id)


# The payment link -------------------------------------------------------------------------------------------------
def _link_invalid(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "billing/payment_link_invalid.html", {"message": message}, status=400)


@require_http_methods(["GET", "POST"])
def payment_link(request: HttpRequest, token: str) -> HttpResponse:
    """Checked first; the signed-in account admin opens it (POST) and lands on Company Billing, as often as they
    like until a card is saved through it; after that it says so and points to Company Billing."""
    try:
        payment_request = payment_link_request(token=token)
    except ValidationError as error:
        return _link_invalid(request, error.messages[0])
    if payment_link_is_spent(request=payment_request):
        return render(request, "billing/payment_link_spent.html", {"payment_request": payment_request})
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    refusal = payment_link_refusal_for(user=_user(request), request=payment_request)
    if refusal:
        return _link_invalid(request, refusal)
    if request.method == "POST":
        try:
            payment_request = payment_link_open(token=token, by=_user(request))
        except ValidationError as error:
            return _link_invalid(request, error.messages[0])
        return redirect("billing:company", subaccount_id=payment_request.subaccount_id)
    return render(request, "billing/payment_link.html", {
        "payment_request": payment_request, "profile": billing_profile(subaccount=payment_request.subaccount),
    })


# Manage Client: asking for a card ---------------------------------------------------------------------------------
@agency_admin_required
@require_POST
def payment_link_send_view(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    subaccount = subaccount_for_agency_staff(user=_user(request), subaccount_id=subaccount_id)
    try:
        sent = payment_link_send(
            subaccount=subaccount, by=_user(request),
            link_url=lambda token: request.build_absolute_uri(reverse("billing:payment-link", args=[token])),
        )
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, f"Payment link sent to {sent.recipients}.")
    return redirect(reverse("subaccounts:manage", args=[subaccount.pk]) + "#billing")


@agency_admin_required
@require_GET
def customer_search(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    subaccount = subaccount_for_agency_staff(user=_user(request), subaccount_id=subaccount_id)
    form = CustomerSearchForm(request.GET or None)
    matches = stripe_customers_find(query=form.cleaned_data["q"]) if form.is_valid() else []
    context = {"subaccount": subaccount, "search_form": form, "matches": matches, "searched": form.is_valid(),
               "client_billing": manage_client_billing(subaccount=subaccount)}
    template = "billing/_customer_matches.html" if request.htmx else "billing/customer_search.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@agency_admin_required
@require_POST
def customer_link(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    subaccount = subaccount_for_agency_staff(user=_user(request), subaccount_id=subaccount_id)
    form = CustomerLinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a Stripe customer to link.")
    else:
        try:
            stripe_customer_link(subaccount=subaccount, customer_id=form.cleaned_data["customer_id"],
                                 by=_user(request))
        except ValidationError as error:
            messages.error(request, error.messages[0])
        else:
            messages.success(request, "Stripe customer linked; their card is now on file.")
    return redirect(reverse("subaccounts:manage", args=[subaccount.pk]) + "#billing")
