"""Add balance and confirming a payment the bank held, on Company Billing (the sub-account's account admins only)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from billing.selectors import company_billing_membership
from stripe_connect.gateway import publishable_key, stripe_js_url
from wallets.models import Charge
from wallets.services import RechargeRefused, charge_execute, wallet_add_balance_start, wallet_ensure
from wallets.services.charging import (
    charge_awaiting_confirmation,
    charge_confirmation_secret,
    charge_confirmed_on_session,
)


@login_required
@require_POST
def add_balance(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    membership = company_billing_membership(user=request.user, subaccount_id=subaccount_id)  # type: ignore[arg-type]
    wallet = wallet_ensure(subaccount=membership.subaccount)
    try:
        charge = wallet_add_balance_start(wallet_id=wallet.pk, amount=request.POST.get("amount", ""),  # type: ignore[arg-type]
                                          by=request.user.email)  # type: ignore[union-attr]
    except RechargeRefused as error:
        messages.error(request, error.messages[0])
        return redirect("billing:company", subaccount_id=subaccount_id)
    charge = charge_execute(charge_id=charge.pk)
    if charge.status == Charge.Status.SUCCEEDED:
        messages.success(request, f"${charge.amount:.2f} added to your balance.")
    elif charge.status in Charge.IN_FLIGHT:
        messages.info(request, "Your payment is being processed; the balance updates when it completes.")
    else:
        messages.error(request, f"The payment failed: {charge.failure_message}")
    return redirect("billing:company", subaccount_id=subaccount_id)


@login_required
@require_http_methods(["GET", "POST"])
def payment_confirm(request: HttpRequest, subaccount_id: int, charge_id: int) -> HttpResponse:
    """GET: Stripe.js's confirmCardPayment for a charge the bank asked the card holder to confirm; POST: the browser
    says it is done, and we ask Stripe before crediting anything."""
    membership = company_billing_membership(user=request.user, subaccount_id=subaccount_id)  # type: ignore[arg-type]
    charge = charge_awaiting_confirmation(wallet=wallet_ensure(subaccount=membership.subaccount), charge_id=charge_id)
    if charge is None:
        raise Http404("No payment waits for confirmation")
    try:
        if request.method == "POST":
            charge = charge_confirmed_on_session(charge_id=charge.pk)
            if charge.status == Charge.Status.SUCCEEDED:
                messages.success(request, f"Payment confirmed: ${charge.amount:.2f} added to your balance.")
            else:
                messages.error(request, "The payment is not confirmed yet.")
            return redirect("billing:company", subaccount_id=subaccount_id)
        client_secret = charge_confirmation_secret(charge=charge)
    except RechargeRefused as error:
        messages.error(request, error.messages[0])
        return redirect("billing:company", subaccount_id=subaccount_id)
    return payment_confirm_render(
        request, payer=membership.subaccount.name, charge=charge, client_secret=client_secret,
        confirm_url=reverse("wallets:payment-confirm", args=[subaccount_id, charge.pk]),
        cancel_url=reverse("billing:company", args=[subaccount_id]), stripe_account_id=charge.stripe_account_id)


def payment_confirm_render(request: HttpRequest, *, payer: str, charge: Any, client_secret: str, confirm_url: str,
                           cancel_url: str, stripe_account_id: str) -> HttpResponse:
    """Stripe.js's confirmCardPayment for a recharge the bank held (a client's, or an agency's on the platform's
    account when `stripe_account_id` is blank); the form then posts to `confirm_url`."""
    return render(request, "wallets/payment_confirm.html", {
        "payer": payer, "charge": charge, "client_secret": client_secret, "confirm_url": confirm_url,
        "cancel_url": cancel_url, "stripe_account_id": stripe_account_id, "publishable_key": publishable_key(),
        "stripe_js_url": stripe_js_url()})
