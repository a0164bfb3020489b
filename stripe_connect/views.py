"""Settings → Stripe (agency admins, agency domain) and the webhook endpoint (platform domain)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from people.models import User
from rebill.access import agency_admin_required
from stripe_connect.selectors import connected_account_for_agency
from stripe_connect.services import (
    connect_authorize_url,
    connect_state_check,
    connect_state_make,
    stripe_account_connect,
    stripe_account_disconnect,
)
from stripe_connect.webhooks import WebhookRejected, platform_webhook_receive, webhook_receive

_NONCE_KEY = "stripe_connect_nonce"


def _settings_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    connected = connected_account_for_agency(agency=request.tenant)  # type: ignore[attr-defined]
    return render(request, "stripe_connect/settings.html", {"connected": connected, "error": error}, status=status)


@agency_admin_required
@require_GET
def stripe_settings(request: HttpRequest) -> HttpResponse:
    return _settings_page(request)


@agency_admin_required
@require_POST
def stripe_connect_start(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    state, nonce = connect_state_make(agency=request.tenant, user=user)  # type: ignore[attr-defined]
    request.session[_NONCE_KEY] = nonce
    redirect_uri = request.build_absolute_uri(reverse("stripe_connect:callback"))
    return redirect(connect_authorize_url(state=state, redirect_uri=redirect_uri))


@agency_admin_required
@require_GET
def stripe_connect_callback(request: HttpRequest) -> HttpResponse:
    """Stripe sends the admin back here. The one GET that writes: the signed, single-use state guards it."""
    user: User = request.user  # type: ignore[assignment]
    expected_nonce = request.session.pop(_NONCE_KEY, None)
    try:
        connect_state_check(state=request.GET.get("state", ""), agency=request.tenant,  # type: ignore[attr-defined]
                            user=user, expected_nonce=expected_nonce)
        if request.GET.get("error"):
            raise ValidationError(f"Stripe did not connect: {request.GET.get('error_description') or 'cancelled'}.")
        stripe_account_connect(agency=request.tenant, code=request.GET.get("code", ""), by=user)  # type: ignore[attr-defined]
    except ValidationError as error:
        return _settings_page(request, error=error.messages[0], status=400)
    messages.success(request, "Your Stripe account is connected.")
    return redirect("stripe_connect:settings")


@agency_admin_required
@require_http_methods(["GET", "POST"])
def stripe_disconnect(request: HttpRequest) -> HttpResponse:
    """GET asks for confirmation; POST disconnects."""
    if request.method == "GET":
        connected = connected_account_for_agency(agency=request.tenant)  # type: ignore[attr-defined]
        if connected is None:
            return redirect("stripe_connect:settings")
        return render(request, "stripe_connect/disconnect_confirm.html", {"connected": connected})
    try:
        stripe_account_disconnect(agency=request.tenant, by=request.user)  # type: ignore[attr-defined,arg-type]
    except ValidationError as error:
        return _settings_page(request, error=error.messages[0], status=400)
    messages.success(request, "Stripe disconnected.")
    return redirect("stripe_connect:settings")


def _webhook(request: HttpRequest, receive: Callable[..., object]) -> HttpResponse:
    try:
        receive(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except WebhookRejected as rejection:
        return HttpResponseBadRequest(str(rejection))
    return HttpResponse("ok")


@csrf_exempt  # Stripe signs the body instead
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Connect events: the agencies' connected accounts (client cards and charges)."""
    return _webhook(request, webhook_receive)


@csrf_exempt
@require_POST
def stripe_platform_webhook(request: HttpRequest) -> HttpResponse:
    """The platform account's own events (agencies' cards and wallets), signed with their own secret."""
    return _webhook(request, platform_webhook_receive)
