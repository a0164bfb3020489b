"""Connecting and disconnecting an agency's Stripe account (Connect OAuth, Standard)."""

from __future__ import annotations

import logging
import secrets

import stripe
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from agencies.models import Agency
from people.models import User
from stripe_connect import gateway
from stripe_connect.models import ConnectedAccount

logger = logging.getLogger(__name__)

_STATE_SALT = "stripe_connect.oauth-state"


def connect_state_make(*, agency: Agency, user: User) -> tuple[str, str]:
    """(state, nonce): the state names the agency and the admin; the nonce goes in their session (single use)."""
    nonce = secrets.token_urlsafe(16)
    state = signing.dumps({"agency": agency.schema_name, "user": user.pk, "nonce": nonce}, salt=_STATE_SALT)
    return state, nonce


def connect_state_check(*, state: str, agency: Agency, user: User, expected_nonce: str | None) -> None:
    try:
        payload = signing.loads(state, salt=_STATE_SALT, max_age=settings.STRIPE_CONNECT_STATE_MAX_AGE)
    except signing.SignatureExpired:
        raise ValidationError("The Stripe connection took too long. Start again.") from None
    except signing.BadSignature:
        raise ValidationError("This Stripe connection link is not valid. Start again from Settings → Stripe.") from None
    if (
        payload.get("agency") != agency.schema_name
        or payload.get("user") != user.pk
        or not expected_nonce
        or not secrets.compare_digest(str(payload.get("nonce", "")), expected_nonce)
    ):
        raise ValidationError("This Stripe connection was not started here, or was already used. Start again.")


def connect_authorize_url(*, state: str, redirect_uri: str) -> str:
    return gateway.connect_authorize_url(state=state, redirect_uri=redirect_uri)


@transaction.atomic
def stripe_account_connect(*, agency: Agency, code: str, by: User) -> ConnectedAccount:
    """Exchange the OAuth code and record which agency the Stripe account belongs to."""
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins connect Stripe.")
    if ConnectedAccount.objects.filter(agency=agency).exists():
        raise ValidationError("A Stripe account is already connected. Disconnect it first.")
    try:
        account_id = gateway.connect_exchange_code(code)
    except stripe.oauth_error.OAuthError as error:
        logger.info("Stripe OAuth code refused for %s: %s", agency.schema_name, error)
        raise ValidationError("Stripe did not accept this connection (the code is invalid or was already used). "
                              "Start again.") from None
    if ConnectedAccount.objects.filter(account_id=account_id).exists():
        raise ValidationError("This Stripe account is already connected to another agency.")
    account = gateway.account_retrieve(account_id)
    business = getattr(account, "business_profile", None)
    name = getattr(business, "name", None) or getattr(account, "email", None) or ""
    try:
        with transaction.atomic():
            return ConnectedAccount.objects.create(
                agency=agency, account_id=account_id, livemode=bool(getattr(account, "livemode", False)),
                display_name=name, connected_by=by.email,
            )
    except IntegrityError:
        raise ValidationError("This Stripe account is already connected.") from None


@transaction.atomic
def stripe_account_disconnect(*, agency: Agency, by: User) -> None:
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins disconnect Stripe.")
    connected = ConnectedAccount.objects.select_for_update().filter(agency=agency).first()
    if connected is None:
        raise ValidationError("No Stripe account is connected.")
    try:
        gateway.connect_deauthorize(connected.account_id)
    except stripe.oauth_error.InvalidClientError:
        # Already disconnected on Stripe's side (e.g. from the Stripe dashboard): forget it here too.
        logger.info("Stripe account %s was already deauthorized", connected.account_id)
    connected.delete()


@transaction.atomic
def stripe_account_record(*, agency: Agency, account_id: str, display_name: str = "") -> ConnectedAccount:
    """Record an account connected elsewhere (the demo's pre-connected agencies)."""
    connected, _ = ConnectedAccount.objects.update_or_create(
        agency=agency, defaults={"account_id": account_id, "display_name": display_name}
    )
    return connected
