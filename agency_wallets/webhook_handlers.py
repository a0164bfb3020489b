"""Events of the platform's own Stripe account (its platform-webhook endpoint): agencies' cards and the charges that
recharge their wallets with the platform. Run in the public schema. Each handler re-reads the object from Stripe:
events arrive twice and out of order."""

from __future__ import annotations

from collections.abc import Callable

from agency_wallets.charging import agency_card_setup_from_stripe, agency_charge_record_from_stripe
from stripe_connect.gateway import PlatformStripe


def on_setup_intent_succeeded(*, object_id: str, event_type: str) -> None:
    agency_card_setup_from_stripe(setup_intent_id=object_id)


def on_payment_intent(*, object_id: str, event_type: str) -> None:
    """Applied to its agency charge (the wallet credited once when it succeeded); others are not ours."""
    agency_charge_record_from_stripe(intent=PlatformStripe().payment_intent_retrieve(object_id))


HANDLERS: dict[str, Callable[..., None]] = {
    "setup_intent.succeeded": on_setup_intent_succeeded,
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "payment_intent.requires_action": on_payment_intent,
    "payment_intent.processing": on_payment_intent,
}
