"""Charging a prepaid wallet by card — the steps every wallet shares, whoever pays (DESIGN §5, §6, §7).

A client's wallet is charged on its agency's connected account (wallets.services.charging), an agency's wallet with
the platform on the platform's own account (agency_wallets.charging); each says where its rows live, which account to
call and what a credit or a failure does (a `ChargeBook`). The steps are the same:

1. a charge row is committed STARTED (`charge_row_start`; one in flight per wallet, a partial unique index);
2. `charge_execute` calls Stripe with the row's key (also in the metadata), the same key on every rerun;
3. `charge_record` applies what Stripe says — synchronous answer or webhook, whichever comes first — with the wallet
   and the charge locked; the wallet is credited once (`ChargeBook.credit`, unique per charge);
4. a charge left STARTED or processing is settled by `charge_reconcile`, which only looks the PaymentIntent up.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import stripe
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from stripe_connect.gateway import StripeCalls
from stripe_connect.money import to_minor_units
from wallets.crashpoints import crash_point
from wallets.locks import charge_call_guard
from wallets.recharge_base import RechargeableWallet, StripeCharge

logger = logging.getLogger(__name__)

# Stripe keeps an idempotency key 24 hours: past this, a rerun must not send the key again, only look up.
KEY_SAFE_FOR = timedelta(hours=23)
# Stripe's search may lag; only a charge older than this with no PaymentIntent is judged never sent.
SEARCH_SETTLES_AFTER = timedelta(hours=1)
METADATA_KEY = "rebill_charge"

RETRY_DELAYS = (timedelta(hours=1), timedelta(hours=6), timedelta(hours=24))
# https://docs.stripe.com/declines/codes: the issuer says a retry cannot succeed.
HARD_DECLINES = frozenset({
    "do_not_honor_permanently", "fraudulent", "lost_card", "merchant_blacklist", "pickup_card",
    "restricted_card", "revocation_of_all_authorizations", "revocation_of_authorization", "security_violation",
    "stolen_card", "stop_payment_order", "invalid_account", "card_not_supported", "currency_not_supported",
})
NEEDS_THE_CLIENT = frozenset({"expired_card", "incorrect_number", "invalid_number", "invalid_expiry_month",
                              "invalid_expiry_year", "invalid_cvc", "incorrect_cvc", "resource_missing"})
AUTHENTICATION_REQUIRED = "authentication_required"


@dataclass(frozen=True)
class ChargeFailure:
    failure_code: str
    decline_code: str
    advice_code: str
    failure_message: str

    @property
    def needs_the_card_holder(self) -> bool:
        return AUTHENTICATION_REQUIRED in (self.failure_code, self.decline_code)

    @property
    def retryable(self) -> bool:
        return decline_is_retryable(failure_code=self.failure_code, decline_code=self.decline_code,
                                    advice_code=self.advice_code)


def decline_is_retryable(*, failure_code: str, decline_code: str, advice_code: str) -> bool:
    if advice_code in ("do_not_try_again", "confirm_card_data"):
        return False
    if failure_code == AUTHENTICATION_REQUIRED or decline_code == AUTHENTICATION_REQUIRED:
        return False
    return decline_code not in HARD_DECLINES and failure_code not in NEEDS_THE_CLIENT \
        and decline_code not in NEEDS_THE_CLIENT


class RechargeRefused(ValidationError):
    pass


class ChargeBook(ABC):
    """One kind of wallet's side of charging."""

    charge_model: type[StripeCharge]
    # Names the advisory lock held while a charge's Stripe call is made.
    lock_namespace: Callable[[], str]

    @abstractmethod
    def lock(self, charge_id: int) -> tuple[Any, Any]:
        """The charge's wallet, then the charge, locked (inside the caller's transaction)."""

    @abstractmethod
    def api_for(self, charge: Any) -> StripeCalls | str:
        """The Stripe account this charge is made on, now; or why it can no longer be."""

    @abstractmethod
    def metadata(self, charge: Any) -> dict[str, str]:
        """The PaymentIntent's metadata; METADATA_KEY carries the charge's idempotency key."""

    @abstractmethod
    def credit(self, wallet: Any, charge: Any, intent: Any) -> None:
        """The ledger entry of a succeeded charge (called once per charge, inside the locked transaction)."""

    @abstractmethod
    def failed(self, wallet: Any, charge: Any, failure: ChargeFailure) -> None:
        """What a failure does beyond the charge row (called once, inside the locked transaction)."""

    def succeeded(self, wallet: Any, charge: Any) -> None:
        wallet_recharge_ok(wallet=wallet)


# Starting ---------------------------------------------------------------------------------------------------------
def charge_row_start(*, model: type[StripeCharge], key: Callable[[int], str], **fields: Any) -> Any:
    """Commit a STARTED charge (a savepoint inside the caller's transaction) keyed by its own id; None when another
    charge of the wallet is in flight (the partial unique index says so)."""
    try:
        with transaction.atomic():
            charge = model._default_manager.create(**fields)
            charge.idempotency_key = key(charge.pk)
            charge.save(update_fields=["idempotency_key"])
    except IntegrityError:
        return None
    return charge


def recharge_may_start(*, wallet: RechargeableWallet, retry: bool) -> bool:
    """An automatic recharge waits after a failure: only the scheduled retry (when due) or a new card starts one."""
    if retry:
        return (wallet.recharge_state == wallet.RechargeState.FAILED and wallet.next_retry_at is not None
                and wallet.next_retry_at <= timezone.now())
    return wallet.recharge_state == wallet.RechargeState.OK


def recharge_retry_counted(*, wallet: RechargeableWallet) -> None:
    wallet.failed_retries += 1
    wallet.next_retry_at = None
    wallet.save(update_fields=["failed_retries", "next_retry_at"])


# Calling Stripe ---------------------------------------------------------------------------------------------------
def charge_execute(book: ChargeBook, *, charge_id: int) -> Any:
    """Call Stripe for a STARTED charge (same key on every rerun), then record its answer."""
    with charge_call_guard(charge_id, namespace=book.lock_namespace()) as ours:
        charge = book.charge_model._default_manager.get(pk=charge_id)
        if not ours or charge.status != StripeCharge.Status.STARTED:
            return charge
        if charge.payment_intent_id or timezone.now() - charge.created_at > KEY_SAFE_FOR:
            return _reconcile(book, charge)
        api = book.api_for(charge)
        if isinstance(api, str):
            return _abandon(book, charge, api)
        crash_point("before_stripe")
        try:
            intent = api.payment_intent_create_off_session(
                amount=charge.amount, currency=charge.currency, customer_id=charge.stripe_customer_id,
                payment_method_id=charge.payment_method_id, metadata=book.metadata(charge),
                idempotency_key=str(charge.idempotency_key))
        except (stripe.CardError, stripe.InvalidRequestError) as error:
            # Stripe's answer. The same key still in flight elsewhere is a 409, an APIError: raised, for the task
            # to retry (the call in flight records the answer).
            return _declined(book, charge, error)
        crash_point("after_stripe")
        return charge_record(book, charge_id=charge.pk, intent=intent)


def _error_failure(error: stripe.StripeError) -> ChargeFailure:
    detail: Any = getattr(error, "error", None)
    return ChargeFailure(
        failure_code=str(getattr(error, "code", None) or getattr(detail, "code", None) or "")[:100],
        decline_code=str(getattr(detail, "decline_code", None) or "")[:100],
        advice_code=str(getattr(detail, "advice_code", None) or "")[:100],
        failure_message=str(getattr(error, "user_message", None) or getattr(detail, "message", None)
                            or "The card was declined.")[:500])


def _intent_failure(intent: Any) -> ChargeFailure:
    status = str(intent.status)
    if status in ("requires_action", "requires_confirmation"):
        return ChargeFailure(failure_code=AUTHENTICATION_REQUIRED, decline_code="", advice_code="",
                             failure_message="Your bank asks you to confirm this payment.")
    error = getattr(intent, "last_payment_error", None)  # requires_payment_method, canceled
    return ChargeFailure(failure_code=str(getattr(error, "code", None) or status)[:100],
                         decline_code=str(getattr(error, "decline_code", None) or "")[:100],
                         advice_code=str(getattr(error, "advice_code", None) or "")[:100],
                         failure_message=str(getattr(error, "message", None) or "The card was declined.")[:500])


def _fail(book: ChargeBook, wallet: Any, charge: Any, failure: ChargeFailure) -> None:
    charge.status = StripeCharge.Status.FAILED
    charge.failure_code, charge.decline_code = failure.failure_code, failure.decline_code
    charge.advice_code, charge.failure_message = failure.advice_code, failure.failure_message
    charge.completed_at = timezone.now()
    charge.save(update_fields=["status", "payment_intent_id", "failure_code", "decline_code", "advice_code",
                               "failure_message", "completed_at"])
    book.failed(wallet, charge, failure)


def _declined(book: ChargeBook, charge: Any, error: stripe.StripeError) -> Any:
    detail: Any = getattr(error, "error", None)
    intent = getattr(detail, "payment_intent", None)
    intent_id = intent if isinstance(intent, str) else str(getattr(intent, "id", None) or "")
    with transaction.atomic():
        wallet, locked = book.lock(charge.pk)
        if locked.status not in StripeCharge.IN_FLIGHT:
            return locked
        if intent_id:
            locked.payment_intent_id = intent_id
        _fail(book, wallet, locked, _error_failure(error))
    return locked


def _abandon(book: ChargeBook, charge: Any, reason: str) -> Any:
    with transaction.atomic():
        _, locked = book.lock(charge.pk)
        if locked.status in (StripeCharge.Status.STARTED, StripeCharge.Status.PROCESSING):
            locked.status = StripeCharge.Status.ABANDONED
            locked.failure_message = reason[:500]
            locked.completed_at = timezone.now()
            locked.save(update_fields=["status", "failure_message", "completed_at"])
    logger.warning("Charge %s abandoned: %s", charge.pk, reason)
    return locked


# Recording Stripe's answer ----------------------------------------------------------------------------------------
def intent_metadata(intent: Any) -> dict[str, str]:
    metadata = getattr(intent, "metadata", None)
    if metadata is None:
        return {}
    return dict(metadata.to_dict() if hasattr(metadata, "to_dict") else metadata)


def _intent_matches(charge: StripeCharge, intent: Any) -> bool:
    return (intent_metadata(intent).get(METADATA_KEY) == charge.idempotency_key
            and int(intent.amount) == to_minor_units(charge.amount, charge.currency)
            and str(intent.currency).lower() == charge.currency.lower())


def charges_awaiting_confirmation(book: ChargeBook) -> Any:
    """The book's charges whose bank asked the card holder to confirm them, their PaymentIntent still open."""
    return (book.charge_model._default_manager.filter(status=StripeCharge.Status.FAILED,
                                                      failure_code=AUTHENTICATION_REQUIRED)
            .exclude(payment_intent_id=""))


def confirmation_intent(book: ChargeBook, *, charge: Any) -> Any:
    """The charge's PaymentIntent as Stripe has it now, for the card holder to confirm (or once they have), read on
    the account the book charges on. RechargeRefused says why it cannot be read there."""
    api = book.api_for(charge)
    if isinstance(api, str):
        raise RechargeRefused(api)
    return api.payment_intent_retrieve(charge.payment_intent_id)


def charge_record(book: ChargeBook, *, charge_id: int, intent: Any) -> Any:
    """What Stripe says about the charge's PaymentIntent now. Credits the wallet once when it succeeded."""
    with transaction.atomic():
        wallet, charge = book.lock(charge_id)
        if not _intent_matches(charge, intent):
            raise ValueError(f"PaymentIntent {intent.id} is not charge {charge.idempotency_key}")
        charge.payment_intent_id = intent.id
        status = str(intent.status)
        if status == "succeeded":
            if charge.status != StripeCharge.Status.SUCCEEDED:
                book.credit(wallet, charge, intent)
                charge.status = StripeCharge.Status.SUCCEEDED
                charge.completed_at = timezone.now()
                charge.save(update_fields=["status", "payment_intent_id", "completed_at"])
                book.succeeded(wallet, charge)
            return charge
        if charge.status not in StripeCharge.IN_FLIGHT:
            return charge  # settled already; an older state of the PaymentIntent changes nothing
        if status == "processing":
            charge.status = StripeCharge.Status.PROCESSING
            charge.save(update_fields=["status", "payment_intent_id"])
        else:
            _fail(book, wallet, charge, _intent_failure(intent))
        return charge


def charge_record_from_stripe(book: ChargeBook, *, intent: Any) -> Any:
    """A webhook's PaymentIntent (already re-read from Stripe): record it on its charge, if it is one of this book's."""
    key = intent_metadata(intent).get(METADATA_KEY)
    charge = book.charge_model._default_manager.filter(idempotency_key=key).first() if key else None
    if charge is None:
        return None
    return charge_record(book, charge_id=charge.pk, intent=intent)


# Reconciliation ---------------------------------------------------------------------------------------------------
def _reconcile(book: ChargeBook, charge: Any) -> Any:
    api = book.api_for(charge)
    if isinstance(api, str):
        logger.warning("Charge %s cannot be reconciled: %s", charge.pk, api)
        return charge
    intent: stripe.PaymentIntent | None
    if charge.payment_intent_id:
        intent = api.payment_intent_retrieve(charge.payment_intent_id)
    else:
        intent = api.payment_intent_find(metadata_key=METADATA_KEY, value=str(charge.idempotency_key))
    if intent is not None:
        return charge_record(book, charge_id=charge.pk, intent=intent)
    if timezone.now() - charge.created_at > SEARCH_SETTLES_AFTER:
        return _abandon(book, charge, "No PaymentIntent carries this charge's key: it never reached Stripe.")
    return charge


def charge_reconcile(book: ChargeBook, *, charge_id: int) -> Any:
    """Settle a charge left STARTED or processing by looking its PaymentIntent up — never by charging again."""
    with charge_call_guard(charge_id, namespace=book.lock_namespace()) as ours:
        charge = book.charge_model._default_manager.get(pk=charge_id)
        if not ours or charge.status not in (StripeCharge.Status.STARTED, StripeCharge.Status.PROCESSING):
            return charge
        return _reconcile(book, charge)


def charges_to_reconcile(book: ChargeBook, *, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
    cutoff = timezone.now() - older_than
    return list(book.charge_model._default_manager.filter(
        status__in=[StripeCharge.Status.STARTED, StripeCharge.Status.PROCESSING], created_at__lt=cutoff)
        .order_by("pk").values_list("pk", flat=True))


# The wallet's recharge state --------------------------------------------------------------------------------------
def wallet_recharge_failed(*, wallet: RechargeableWallet, failure: ChargeFailure) -> None:
    """A failed automatic recharge: the state the pages show, and the next retry (1 h, 6 h, 24 h) unless the decline
    says a retry cannot succeed. Inside the caller's transaction, wallet locked."""
    wallet.recharge_state = (wallet.RechargeState.ACTION_REQUIRED if failure.needs_the_card_holder
                             else wallet.RechargeState.FAILED)
    wallet.last_failure_code = failure.decline_code or failure.failure_code
    wallet.last_failure_message = failure.failure_message
    wallet.next_retry_at = (timezone.now() + RETRY_DELAYS[wallet.failed_retries]
                            if failure.retryable and wallet.failed_retries < len(RETRY_DELAYS) else None)
    wallet.save(update_fields=["recharge_state", "last_failure_code", "last_failure_message", "next_retry_at"])


def wallet_recharge_ok(*, wallet: RechargeableWallet) -> None:
    """A successful charge (or a new card) clears the failure state and the retry schedule."""
    if wallet.recharge_state != wallet.RechargeState.OK or wallet.failed_retries or wallet.next_retry_at:
        wallet.recharge_state = wallet.RechargeState.OK
        wallet.failed_retries = 0
        wallet.next_retry_at = None
        wallet.last_failure_code = ""
        wallet.last_failure_message = ""
        wallet.save(update_fields=["recharge_state", "failed_retries", "next_retry_at", "last_failure_code",
                                   "last_failure_message"])
