"""Stripe events about a connected account's objects, run inside that agency's schema.

Each handler is given only the object's id and re-reads the object from Stripe: events arrive twice and
out of order, so the payload of an event says what was true once, not what is true now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from billing.models import BillingProfile, CardSetup, PaymentIntentRecord
from billing.services import CardNotConfirmed, billing_card_sync, card_setup_complete
from stripe_connect.gateway import AgencyStripe
from stripe_connect.selectors import NotConnected, agency_stripe, current_agency

logger = logging.getLogger(__name__)

Handler = Callable[..., None]


def _current_account_only(handler: Handler) -> Handler:
    """Act only on events of the agency's *current* Stripe account: an event stored while another account was
    connected (and handled or retried after a reconnect) changes nothing."""

    @wraps(handler)
    def guarded(*, object_id: str, api: AgencyStripe, event_type: str) -> None:
        try:
            current = agency_stripe(agency=current_agency())
        except NotConnected:
            current = None
        if current is None or current.account_id != api.account_id:
            logger.info("Stripe event %s about %s on %s ignored: not the agency's current account",
                        event_type, object_id, api.account_id)
            return
        handler(object_id=object_id, api=current, event_type=event_type)

    return guarded


def _profiles_for_customer(*, api: AgencyStripe, customer_id: str | None) -> list[BillingProfile]:
    if not customer_id:
        return []
    return list(BillingProfile.objects.select_related("subaccount").filter(
        stripe_account_id=api.account_id, stripe_customer_id=customer_id))


def _id(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return getattr(value, "id", None)


@_current_account_only
def on_setup_intent_succeeded(*, object_id: str, api: AgencyStripe, event_type: str) -> None:
    setup = CardSetup.objects.filter(stripe_account_id=api.account_id, setup_intent_id=object_id).first()
    if setup is not None:
        try:
            card_setup_complete(setup=setup, actor="Stripe")
        except CardNotConfirmed:
            pass  # Stripe says otherwise now; a later event (or the browser) finishes it
        return
    setup_intent = api.setup_intent_retrieve(object_id)
    for profile in _profiles_for_customer(api=api, customer_id=_id(setup_intent.customer)):
        billing_card_sync(profile=profile, api=api)


@_current_account_only
def on_payment_method_changed(*, object_id: str, api: AgencyStripe, event_type: str) -> None:
    payment_method = api.payment_method_retrieve(object_id)
    profiles = {p.pk: p for p in _profiles_for_customer(api=api, customer_id=_id(payment_method.customer))}
    # A detached card no longer names its customer: find who had it on file.
    for profile in BillingProfile.objects.select_related("subaccount").filter(
            stripe_account_id=api.account_id, card_payment_method_id=object_id):
        profiles.setdefault(profile.pk, profile)
    for profile in profiles.values():
        billing_card_sync(profile=profile, api=api)


@_current_account_only
def on_customer_updated(*, object_id: str, api: AgencyStripe, event_type: str) -> None:
    for profile in _profiles_for_customer(api=api, customer_id=object_id):
        billing_card_sync(profile=profile, api=api)


@_current_account_only
def on_payment_intent(*, object_id: str, api: AgencyStripe, event_type: str) -> None:
    """Recorded, and applied to its wallet charge (credited once when it succeeded)."""
    from wallets.services import charge_record_from_stripe  # wallets imports billing's models

    intent = api.payment_intent_retrieve(object_id)
    charge_record_from_stripe(intent=intent)
    customer_id = _id(intent.customer) or ""
    profiles = _profiles_for_customer(api=api, customer_id=customer_id)
    error = getattr(intent, "last_payment_error", None)
    PaymentIntentRecord.objects.update_or_create(
        payment_intent_id=intent.id,
        defaults={
            "stripe_account_id": api.account_id,
            "subaccount": profiles[0].subaccount if profiles else None,
            "stripe_customer_id": customer_id,
            "status": intent.status,
            "amount_minor": int(intent.amount),
            "currency": str(intent.currency),
            "last_event_type": event_type,
            "failure_code": str(getattr(error, "decline_code", None) or getattr(error, "code", None) or ""),
        },
    )


HANDLERS: dict[str, Handler] = {
    "setup_intent.succeeded": on_setup_intent_succeeded,
    "payment_method.attached": on_payment_method_changed,
    "payment_method.detached": on_payment_method_changed,
    "customer.updated": on_customer_updated,
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "payment_intent.requires_action": on_payment_intent,
}
