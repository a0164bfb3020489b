"""Add balance on Company Billing (the sub-account's account admins only)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from billing.selectors import company_billing_membership
from wallets.models import Charge
from wallets.services import RechargeRefused, charge_execute, wallet_add_balance_start, wallet_ensure


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
