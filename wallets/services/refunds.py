"""Refunds (DESIGN §5): an agency admin gives back part or all of a client's succeeded recharge through the agency's
Stripe account. Like a charge: the refund row is committed STARTED (its own transaction, the charge locked, never
beyond what is left to refund), Stripe is called with the row's key `refund:<schema>:<id>`, and the wallet gets one
entry of kind refund when Stripe accepted it (unique per refund). A refund left STARTED by a crash is sent again
with the same key by the maintenance job while Stripe still honours the key, so Stripe answers with the refund it
made (or makes it once) and the ledger records it once."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import stripe
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from people.models import User
from rebill.tenancy import current_schema
from stripe_connect.money import currency_exponent
from wallets.crashpoints import crash_point
from wallets.locks import charge_lock
from wallets.models import Charge, Refund, WalletEntry
from wallets.services.charging import CLIENT_CHARGES
from wallets.services.ledger import entry_append
from wallets.services.stripe_charging import KEY_SAFE_FOR

logger = logging.getLogger(__name__)


class RefundRefused(ValidationError):
    pass


def refund_key(refund_id: int) -> str:
    return f"refund:{current_schema()}:{refund_id}"


def charge_refundable(*, charge: Charge) -> Decimal:
    """What is left to refund of a charge: its amount less every refund not failed (started ones count)."""
    if charge.status != Charge.Status.SUCCEEDED:
        return Decimal(0)
    given = Refund.objects.filter(charge=charge).exclude(status=Refund.Status.FAILED).aggregate(
        total=Sum("amount"))["total"] or Decimal(0)
    return charge.amount - given


@transaction.atomic
def refund_start(*, charge_id: int, amount: Decimal, by: User) -> Refund:
    """Commit a STARTED refund, or refuse (RefundRefused) and change nothing."""
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins refund a client's payment.")
    _, charge = charge_lock(charge_id=charge_id)
    amount = Decimal(amount)
    if not amount.is_finite() or amount <= 0:
        raise RefundRefused("Enter an amount above zero.")
    if amount != amount.quantize(Decimal(1).scaleb(-currency_exponent(charge.currency))):
        raise RefundRefused("Use whole cents.")
    if charge.status != Charge.Status.SUCCEEDED:
        raise RefundRefused("Only a payment that succeeded can be refunded.")
    left = charge_refundable(charge=charge)
    if amount > left:
        raise RefundRefused(f"At most {left:.2f} {charge.currency.upper()} of this payment can still be refunded.")
    refund = Refund.objects.create(charge=charge, amount=amount, requested_by=by.email)
    refund.idempotency_key = refund_key(refund.pk)
    refund.save(update_fields=["idempotency_key"])
    return refund


def refund_execute(*, refund_id: int) -> Refund:
    """Call Stripe for a STARTED refund (the same key on every rerun), then record the answer once."""
    refund = Refund.objects.select_related("charge").get(pk=refund_id)
    if refund.status != Refund.Status.STARTED:
        return refund
    api = CLIENT_CHARGES.api_for(refund.charge)
    if isinstance(api, str):
        return _refund_settle(refund_id, stripe_refund_id="", failure=api)
    crash_point("before_stripe")
    try:
        stripe_refund = api.refund_create(
            payment_intent_id=refund.charge.payment_intent_id, amount=refund.amount, currency=refund.charge.currency,
            metadata={"rebill_refund": str(refund.idempotency_key)}, idempotency_key=str(refund.idempotency_key))
    except stripe.InvalidRequestError as error:
        # Stripe's answer. The same key still in flight elsewhere is a 409, an APIError: raised, for the task to
        # retry (the call in flight records the answer).
        return _refund_settle(refund_id, stripe_refund_id="", failure=str(error.user_message or error))
    crash_point("after_stripe")
    if str(stripe_refund.status) in ("failed", "canceled"):
        return _refund_settle(refund_id, stripe_refund_id=stripe_refund.id, failure="Stripe could not refund it.")
    return _refund_settle(refund_id, stripe_refund_id=stripe_refund.id, failure="")


def _refund_settle(refund_id: int, *, stripe_refund_id: str, failure: str) -> Refund:
    with transaction.atomic():
        charge_id = Refund.objects.values_list("charge_id", flat=True).get(pk=refund_id)
        wallet, _ = charge_lock(charge_id=charge_id)
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status != Refund.Status.STARTED:
            return refund
        refund.stripe_refund_id = stripe_refund_id
        refund.completed_at = timezone.now()
        if failure:
            refund.status, refund.failure_message = Refund.Status.FAILED, failure[:500]
        else:
            refund.status = Refund.Status.SUCCEEDED
            entry_append(wallet=wallet, kind=WalletEntry.Kind.REFUND, amount=-refund.amount, refund=refund,
                         charge_id=charge_id, note=f"Refunded to the card ({stripe_refund_id})",
                         created_by=refund.requested_by)
        refund.save(update_fields=["status", "stripe_refund_id", "failure_message", "completed_at"])
    if failure:
        logger.warning("Refund %s failed: %s", refund_id, failure)
    return refund


def charge_refund(*, charge_id: int, amount: Decimal, by: User) -> Refund:
    """Refund part or all of a succeeded charge: the row first, then Stripe, then the ledger (once)."""
    return refund_execute(refund_id=refund_start(charge_id=charge_id, amount=amount, by=by).pk)


def refunds_to_resume(*, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
    """Refunds still STARTED a while after they began: the process that sent them died before recording Stripe's
    answer (or before calling Stripe at all)."""
    return list(Refund.objects.filter(status=Refund.Status.STARTED, created_at__lte=timezone.now() - older_than)
                .order_by("pk").values_list("pk", flat=True))


def refund_resume(*, refund_id: int) -> Refund:
    """Send a stuck refund again with its own key, while Stripe still replays that key's answer; past that, leave it
    for a person to check in Stripe (sending it with a dead key could refund twice)."""
    refund = Refund.objects.get(pk=refund_id)
    if refund.status == Refund.Status.STARTED and timezone.now() - refund.created_at > KEY_SAFE_FOR:
        logger.error("Refund %s (%s) has been STARTED for over a day: check it in Stripe and settle it by hand",
                     refund_id, refund.idempotency_key)
        return refund
    return refund_execute(refund_id=refund_id)
