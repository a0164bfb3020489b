"""Settings → Billing (agency admins, agency domain): the agency's wallet with the platform, its card on the
platform's own Stripe account, auto-recharge, the failure banner."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agencies.models import Agency
from agency_wallets.charging import (
    agency_auto_recharge_set,
    agency_card_setup_client_secret,
    agency_card_setup_complete,
    agency_card_setup_start,
    agency_charge_awaiting_confirmation,
    agency_charge_confirmation_secret,
    agency_charge_confirmed_on_session,
)
from agency_wallets.models import AgencyCardSetup, AgencyCharge
from agency_wallets.selectors import agency_billing_summary, agency_card_setup_for
from billing.services import CardNotConfirmed
from billing.views import card_form_render
from people.models import User
from rebill.access import agency_admin_required
from rebilling.forms import AutoRechargeForm
from wallets.views import payment_confirm_render


def _agency(request: HttpRequest) -> Agency:
    return request.tenant  # type: ignore[attr-defined, no-any-return]


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _page(request: HttpRequest, *, form: AutoRechargeForm | None = None, status: int = 200) -> HttpResponse:
    summary = agency_billing_summary(agency=_agency(request))
    if form is None:
        wallet = summary.wallet
        form = AutoRechargeForm(initial={
            "amount": f"{wallet.auto_recharge_amount:.2f}" if wallet else "10.00",
            "threshold": f"{wallet.auto_recharge_threshold:.2f}" if wallet else "10.00"})
    return render(request, "agency_wallets/settings_billing.html",
                  {"summary": summary, "plan": _agency(request).get_plan_display(), "recharge_form": form},
                  status=status)


@agency_admin_required
@require_GET
def settings_billing(request: HttpRequest) -> HttpResponse:
    return _page(request)


@agency_admin_required
@require_POST
def auto_recharge_save(request: HttpRequest) -> HttpResponse:
    form = AutoRechargeForm(request.POST)
    if form.is_valid():
        try:
            agency_auto_recharge_set(agency=_agency(request), amount=form.cleaned_data["amount"],
                                     threshold=form.cleaned_data["threshold"], by=_user(request))
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Auto-recharge saved.")
            return redirect("agency_wallets:settings-billing")
    return _page(request, form=form, status=400)


@agency_admin_required
@require_POST
def card_setup_start_view(request: HttpRequest) -> HttpResponse:
    setup = agency_card_setup_start(agency=_agency(request), by=_user(request))
    return redirect("agency_wallets:card-setup", setup_id=setup.pk)


@agency_admin_required
@require_GET
def card_setup_page(request: HttpRequest, setup_id: int) -> HttpResponse:
    setup = agency_card_setup_for(agency=_agency(request), setup_id=setup_id)
    if setup.status != AgencyCardSetup.Status.STARTED:
        return redirect("agency_wallets:settings-billing")
    return card_form_render(
        request, card_for=_agency(request).name, card_purpose="the agency's LC Phone usage with the platform",
        has_card=setup.wallet.has_card, client_secret=agency_card_setup_client_secret(setup=setup),
        stripe_account_id="", done_url=reverse("agency_wallets:card-done", args=[setup.pk]),
        cancel_url=reverse("agency_wallets:settings-billing"))


@agency_admin_required
@require_POST
def card_setup_done(request: HttpRequest, setup_id: int) -> HttpResponse:
    """Stripe.js confirmed the card in the browser; we check with Stripe before believing it."""
    setup = agency_card_setup_for(agency=_agency(request), setup_id=setup_id)
    try:
        setup = agency_card_setup_complete(setup_id=setup.pk, actor=_user(request).email)
    except CardNotConfirmed as error:
        messages.error(request, str(error))
        return redirect("agency_wallets:card-setup", setup_id=setup_id)
    if setup.status == AgencyCardSetup.Status.SUCCEEDED:
        messages.success(request, "The agency's card is saved.")
    else:
        messages.error(request, "The card was not saved. Please try again.")
    return redirect("agency_wallets:settings-billing")


@agency_admin_required
@require_http_methods(["GET", "POST"])
def payment_confirm(request: HttpRequest, charge_id: int) -> HttpResponse:
    """GET: Stripe.js's confirmCardPayment for a recharge the agency's bank asked to confirm; POST: the browser says
    it is done, and we ask Stripe before crediting anything."""
    charge = agency_charge_awaiting_confirmation(agency=_agency(request), charge_id=charge_id)
    if charge is None:
        raise Http404("No payment waits for confirmation")
    if request.method == "POST":
        charge = agency_charge_confirmed_on_session(charge_id=charge.pk)
        if charge.status == AgencyCharge.Status.SUCCEEDED:
            messages.success(request, f"Payment confirmed: ${charge.amount:.2f} added to your LC Phone balance.")
        else:
            messages.error(request, "The payment is not confirmed yet.")
        return redirect("agency_wallets:settings-billing")
    return payment_confirm_render(
        request, payer=_agency(request).name, charge=charge,
        client_secret=agency_charge_confirmation_secret(charge=charge),
        confirm_url=reverse("agency_wallets:payment-confirm", args=[charge.pk]),
        cancel_url=reverse("agency_wallets:settings-billing"), stripe_account_id="")
