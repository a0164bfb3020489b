"""Recharging a wallet through the agency's Stripe account (DESIGN §5, §7).

1. `wallet_recharge_start` decides and commits a STARTED charge (its own transaction, wallet locked; the
   partial unique index allows one charge in flight per wallet).
2. `charge_execute` calls Stripe with the charge's own key `charge:<schema>:<id>` (also in the metadata). A rerun
   (Celery redelivery after a crash) sends the same key, so Stripe answers with the same PaymentIntent.
3. `charge_record` applies what Stripe says — from the synchronous answer or the webhook, whichever comes first —
   with the wallet and the charge locked; the credit is unique per charge.
A charge left STARTED or processing is settled by `charge_reconcile`, which only looks the PaymentIntent up.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import stripe
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import BillingProfile
from rebilling.models import SubAccountRebilling
from rebilling.selectors import rebilling_decision_for
from stripe_connect.gateway import AgencyStripe
from stripe_connect.money import currency_exponent, to_minor_units
from stripe_connect.selectors import NotConnected, agency_stripe, current_agency
from wallets.crashpoints import crash_point
from wallets.locks import charge_call_guard, charge_lock, wallet_lock
from wallets.models import Charge, Wallet, WalletEntry
from wallets.money import recharge_amount
from wallets.services.failures import charge_failed, charge_succeeded_aftercare
from wallets.services.ledger import charge_key, entry_append

logger = logging.getLogger(__name__)

MAXIMUM_ADD_BALANCE = Decimal("10000")
# Stripe keeps an idempotency key 24 hours: past this, a rerun must not send the key again, only look up.
KEY_SAFE_FOR = timedelta(hours=23)
# Stripe's search may lag; only a charge older than this with no PaymentIntent is judged never sent.
SEARCH_SETTLES_AFTER = timedelta(hours=1)


_PLAIN_AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?")


class RechargeRefused(ValidationError):
    pass


def _card(*, account_id: str, subaccount_id: int) -> BillingProfile | None:
    """The card on file, if it lives on the agency's current account (a card of an old account can't be charged)."""
    return BillingProfile.objects.filter(subaccount_id=subaccount_id, stripe_account_id=account_id).exclude(
        card_payment_method_id="").first()


def _start(*, wallet: Wallet, kind: str, amount: Decimal, api: AgencyStripe, profile: BillingProfile,
           by: str) -> Charge | None:
    try:
        with transaction.atomic():
            charge = Charge.objects.create(
                wallet=wallet, kind=kind, amount=amount, currency=wallet.currency, stripe_account_id=api.account_id,
                stripe_customer_id=profile.stripe_customer_id, payment_method_id=profile.card_payment_method_id,
                requested_by=by)
            charge.idempotency_key = charge_key(charge.pk)
            charge.save(update_fields=["idempotency_key"])
    except IntegrityError:
        return None  # another charge is in flight for this wallet (the partial unique index said so)
    return charge


@transaction.atomic
def wallet_recharge_start(*, wallet_id: int, retry: bool = False) -> Charge | None:
    """Start an auto-recharge if one is due: balance below the threshold, none in flight, a card on file, not
    waiting for a retry or for the client (unless this is the scheduled retry). Committed before any Stripe call."""
    wallet = wallet_lock(wallet_id=wallet_id)
    settings = SubAccountRebilling.objects.filter(subaccount_id=wallet.subaccount_id, switched_on=True).first()
    if settings is None or wallet.balance >= settings.auto_recharge_threshold:
        return None
    if retry:
        if wallet.recharge_state != Wallet.RechargeState.FAILED or wallet.next_retry_at is None \
                or wallet.next_retry_at > timezone.now():
            return None
    elif wallet.recharge_state != Wallet.RechargeState.OK:
        return None
    if Charge.objects.filter(wallet=wallet, status__in=Charge.IN_FLIGHT).exists():
        return None
    if not rebilling_decision_for(subaccount=wallet.subaccount).is_enabled:
        return None
    try:
        api = agency_stripe(agency=current_agency())
    except NotConnected:
        return None
    profile = _card(account_id=api.account_id, subaccount_id=wallet.subaccount_id)
    if profile is None:
        return None
    amount = recharge_amount(balance=wallet.balance, top_up=settings.auto_recharge_amount, currency=wallet.currency)
    charge = _start(wallet=wallet, kind=Charge.Kind.AUTO_RECHARGE, amount=amount, api=api, profile=profile,
                    by="auto-recharge")
    if charge is not None and retry:
        wallet.failed_retries += 1
        wallet.next_retry_at = None
        wallet.save(update_fields=["failed_retries", "next_retry_at"])
    return charge


def add_balance_amount(raw: str, *, currency: str) -> Decimal:
    """The client's typed amount, or a clear error: whole minor units, at least the minimum, within reason."""
    from agencies.plans import MINIMUM_RECHARGE

    text = str(raw).strip().removeprefix("$").replace(",", "")
    if not _PLAIN_AMOUNT.fullmatch(text):  # no exponents, signs, NaN or Infinity
        raise RechargeRefused("Enter an amount, e.g. 25.00.")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise RechargeRefused("Enter an amount, e.g. 25.00.") from None
    if amount != amount.quantize(Decimal(1).scaleb(-currency_exponent(currency))):
        raise RechargeRefused("Use whole cents.")
    if amount < MINIMUM_RECHARGE:
        raise RechargeRefused(f"The smallest amount is ${MINIMUM_RECHARGE}.")
    if amount > MAXIMUM_ADD_BALANCE:
        raise RechargeRefused(f"Add at most ${MAXIMUM_ADD_BALANCE:,.0f} at a time.")
    return amount


@transaction.atomic
def wallet_add_balance_start(*, wallet_id: int, amount: Decimal, by: str) -> Charge:
    """Add balance (Company Billing, account admins): charge the card on file now. Raises RechargeRefused."""
    wallet = wallet_lock(wallet_id=wallet_id)
    amount = add_balance_amount(str(amount), currency=wallet.currency)
    if Charge.objects.filter(wallet=wallet, status__in=Charge.IN_FLIGHT).exists():
        raise RechargeRefused("A payment is already in progress for this account. Please wait a moment.")
    try:
        api = agency_stripe(agency=current_agency())
    except NotConnected:
        raise RechargeRefused("Card payments are not set up by your agency yet.") from None
    profile = _card(account_id=api.account_id, subaccount_id=wallet.subaccount_id)
    if profile is None:
        raise RechargeRefused("Add a card first.")
    charge = _start(wallet=wallet, kind=Charge.Kind.MANUAL, amount=amount, api=api, profile=profile, by=by)
    if charge is None:
        raise RechargeRefused("A payment is already in progress for this account. Please wait a moment.")
    return charge


def _metadata(charge: Charge) -> dict[str, str]:
    return {"rebill_charge": str(charge.idempotency_key), "rebill_wallet": str(charge.wallet_id)}


def charge_execute(*, charge_id: int) -> Charge:
    """Call Stripe for a STARTED charge (same key on every rerun), then record its answer."""
    with charge_call_guard(charge_id) as ours:
        charge = Charge.objects.get(pk=charge_id)
        if not ours or charge.status != Charge.Status.STARTED:
            return charge
        if charge.payment_intent_id or timezone.now() - charge.created_at > KEY_SAFE_FOR:
            return _reconcile(charge)
        try:
            api = agency_stripe(agency=current_agency())
        except NotConnected:
            return _abandon(charge, "The agency's Stripe account is no longer connected.")
        if api.account_id != charge.stripe_account_id:
            return _abandon(charge, "The agency connected another Stripe account after this charge started.")
        crash_point("before_stripe")
        try:
            intent = api.payment_intent_create_off_session(
                amount=charge.amount, currency=charge.currency, customer_id=charge.stripe_customer_id,
                payment_method_id=charge.payment_method_id, metadata=_metadata(charge),
                idempotency_key=str(charge.idempotency_key))
        except stripe.CardError as error:
            return _declined(charge, error)
        except stripe.InvalidRequestError as error:
            if error.http_status == 409:  # the same key in flight elsewhere: that call records the answer
                raise
            return _declined(charge, error)
        crash_point("after_stripe")
        return charge_record(charge_id=charge.pk, intent=intent)


def _error_fields(error: stripe.StripeError) -> dict[str, str]:
    detail: Any = getattr(error, "error", None)
    return {
        "failure_code": str(getattr(error, "code", None) or getattr(detail, "code", None) or "")[:100],
        "decline_code": str(getattr(detail, "decline_code", None) or "")[:100],
        "advice_code": str(getattr(detail, "advice_code", None) or "")[:100],
        "failure_message": str(getattr(error, "user_message", None) or getattr(detail, "message", None)
                               or "The card was declined.")[:500],
    }


def _declined(charge: Charge, error: stripe.StripeError) -> Charge:
    detail: Any = getattr(error, "error", None)
    intent = getattr(detail, "payment_intent", None)
    intent_id = intent if isinstance(intent, str) else str(getattr(intent, "id", None) or "")
    with transaction.atomic():
        wallet, locked = charge_lock(charge_id=charge.pk)
        if locked.status not in Charge.IN_FLIGHT:
            return locked
        if intent_id:
            locked.payment_intent_id = intent_id
        charge_failed(wallet=wallet, charge=locked, **_error_fields(error))
    return locked


def _abandon(charge: Charge, reason: str) -> Charge:
    with transaction.atomic():
        _, locked = charge_lock(charge_id=charge.pk)
        if locked.status in (Charge.Status.STARTED, Charge.Status.PROCESSING):
            locked.status = Charge.Status.ABANDONED
            locked.failure_message = reason[:500]
            locked.completed_at = timezone.now()
            locked.save(update_fields=["status", "failure_message", "completed_at"])
    logger.warning("Charge %s abandoned: %s", charge.pk, reason)
    return locked


def _metadata_of(intent: Any) -> dict[str, str]:
    metadata = getattr(intent, "metadata", None)
    if metadata is None:
        return {}
    return dict(metadata.to_dict() if hasattr(metadata, "to_dict") else metadata)


def _intent_matches(charge: Charge, intent: Any) -> bool:
    metadata = _metadata_of(intent)
    return (metadata.get("rebill_charge") == charge.idempotency_key
            and int(intent.amount) == to_minor_units(charge.amount, charge.currency)
            and str(intent.currency).lower() == charge.currency.lower())


def charge_record(*, charge_id: int, intent: Any) -> Charge:
    """What Stripe says about the charge's PaymentIntent now. Credits the wallet once when it succeeded."""
    with transaction.atomic():
        wallet, charge = charge_lock(charge_id=charge_id)
        if not _intent_matches(charge, intent):
            raise ValueError(f"PaymentIntent {intent.id} is not charge {charge.idempotency_key}")
        charge.payment_intent_id = intent.id
        status = str(intent.status)
        if status == "succeeded":
            if charge.status != Charge.Status.SUCCEEDED:
                kind = (WalletEntry.Kind.RECHARGE if charge.kind == Charge.Kind.AUTO_RECHARGE
                        else WalletEntry.Kind.MANUAL_TOP_UP)
                entry_append(wallet=wallet, kind=kind, amount=charge.amount, charge=charge,
                             note=f"Card charged ({intent.id})", created_by=charge.requested_by or "Stripe")
                charge.status = Charge.Status.SUCCEEDED
                charge.completed_at = timezone.now()
                charge.save(update_fields=["status", "payment_intent_id", "completed_at"])
                charge_succeeded_aftercare(wallet=wallet, charge=charge)
            return charge
        if charge.status not in Charge.IN_FLIGHT:
            return charge  # settled already; an older state of the PaymentIntent changes nothing
        if status == "processing":
            charge.status = Charge.Status.PROCESSING
            charge.save(update_fields=["status", "payment_intent_id"])
        elif status in ("requires_action", "requires_confirmation"):
            charge_failed(wallet=wallet, charge=charge, failure_code="authentication_required", decline_code="",
                          advice_code="", failure_message="Your bank asks you to confirm this payment.")
        else:  # requires_payment_method, canceled
            error = getattr(intent, "last_payment_error", None)
            charge_failed(wallet=wallet, charge=charge,
                          failure_code=str(getattr(error, "code", None) or status)[:100],
                          decline_code=str(getattr(error, "decline_code", None) or "")[:100],
                          advice_code=str(getattr(error, "advice_code", None) or "")[:100],
                          failure_message=str(getattr(error, "message", None) or "The card was declined.")[:500])
        return charge


def charge_record_from_stripe(*, intent: Any) -> Charge | None:
    """A webhook's PaymentIntent (already re-read from Stripe): record it on its charge, if it is one of ours."""
    key = _metadata_of(intent).get("rebill_charge")
    charge = Charge.objects.filter(idempotency_key=key).first() if key else None
    if charge is None:
        return None
    return charge_record(charge_id=charge.pk, intent=intent)


# Reconciliation ---------------------------------------------------------------------------------------------------
def _reconcile(charge: Charge) -> Charge:
    try:
        api = agency_stripe(agency=current_agency())
    except NotConnected:
        logger.warning("Charge %s cannot be reconciled: Stripe not connected", charge.pk)
        return charge
    if api.account_id != charge.stripe_account_id:
        logger.warning("Charge %s was made on %s, no longer the agency's account", charge.pk,
                       charge.stripe_account_id)
        return charge
    intent: stripe.PaymentIntent | None
    if charge.payment_intent_id:
        intent = api.payment_intent_retrieve(charge.payment_intent_id)
    else:
        intent = api.payment_intent_find(metadata_key="rebill_charge", value=str(charge.idempotency_key))
    if intent is not None:
        return charge_record(charge_id=charge.pk, intent=intent)
    if timezone.now() - charge.created_at > SEARCH_SETTLES_AFTER:
        return _abandon(charge, "No PaymentIntent carries this charge's key: it never reached Stripe.")
    return charge


def charge_reconcile(*, charge_id: int) -> Charge:
    """Settle a charge left STARTED or processing by looking its PaymentIntent up — never by charging again."""
    with charge_call_guard(charge_id) as ours:
        charge = Charge.objects.get(pk=charge_id)
        if not ours or charge.status not in (Charge.Status.STARTED, Charge.Status.PROCESSING):
            return charge
        return _reconcile(charge)


def charges_to_reconcile(*, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
    cutoff = timezone.now() - older_than
    return list(Charge.objects.filter(status__in=[Charge.Status.STARTED, Charge.Status.PROCESSING],
                                      created_at__lt=cutoff).order_by("pk").values_list("pk", flat=True))
