"""What a declined recharge does (DESIGN §5): the charge records Stripe's codes, the wallet shows *recharge
failed*, account admins and agency admins are emailed, and retries are scheduled at 1 h, 6 h and 24 h unless
the decline says not to; `authentication_required` waits for the client to confirm on Company Billing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from people.models import User
from subaccounts.selectors import subaccount_account_admins
from wallets.models import Charge, Wallet

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


def decline_is_retryable(*, failure_code: str, decline_code: str, advice_code: str) -> bool:
    if advice_code in ("do_not_try_again", "confirm_card_data"):
        return False
    if failure_code == AUTHENTICATION_REQUIRED or decline_code == AUTHENTICATION_REQUIRED:
        return False
    return decline_code not in HARD_DECLINES and failure_code not in NEEDS_THE_CLIENT \
        and decline_code not in NEEDS_THE_CLIENT


def _recipients(wallet: Wallet) -> list[str]:
    admins = list(subaccount_account_admins(subaccount=wallet.subaccount).values_list("email", flat=True))
    agency = list(User.objects.filter(role=User.Role.AGENCY_ADMIN, is_active=True).order_by("email")
                  .values_list("email", flat=True))
    return sorted(set(admins) | set(agency))


def charge_failed(*, wallet: Wallet, charge: Charge, failure_code: str, decline_code: str, advice_code: str,
                  failure_message: str) -> None:
    """Inside the caller's transaction, with wallet and charge locked."""
    now = timezone.now()
    charge.status = Charge.Status.FAILED
    charge.failure_code, charge.decline_code, charge.advice_code = failure_code, decline_code, advice_code
    charge.failure_message = failure_message
    charge.completed_at = now
    charge.save(update_fields=["status", "payment_intent_id", "failure_code", "decline_code", "advice_code",
                               "failure_message", "completed_at"])
    if charge.kind != Charge.Kind.AUTO_RECHARGE:
        return  # the client saw Add balance fail on the page; the auto-recharge state is unchanged
    needs_client = AUTHENTICATION_REQUIRED in (failure_code, decline_code)
    wallet.recharge_state = (Wallet.RechargeState.ACTION_REQUIRED if needs_client
                             else Wallet.RechargeState.FAILED)
    wallet.last_failure_code = decline_code or failure_code
    wallet.last_failure_message = failure_message
    retryable = decline_is_retryable(failure_code=failure_code, decline_code=decline_code, advice_code=advice_code)
    wallet.next_retry_at = (now + RETRY_DELAYS[wallet.failed_retries]
                            if retryable and wallet.failed_retries < len(RETRY_DELAYS) else None)
    wallet.save(update_fields=["recharge_state", "last_failure_code", "last_failure_message", "next_retry_at"])
    _notify_failure(wallet=wallet, charge=charge, needs_client=needs_client)
    _suspension_check(wallet=wallet)


def _notify_failure(*, wallet: Wallet, charge: Charge, needs_client: bool) -> None:
    from stripe_connect.selectors import current_agency

    recipients = _recipients(wallet)
    name = wallet.subaccount.name
    agency = current_agency().name
    if needs_client:
        what = "Your bank asks you to confirm the payment: open Settings → Company Billing and confirm it."
    elif wallet.next_retry_at is not None:
        what = f"We will try again at {wallet.next_retry_at:%Y-%m-%d %H:%M} UTC, or add a new card to retry now."
    else:
        what = "We will not retry this card: add a new card on Settings → Company Billing."
    message = (f"The automatic recharge of {charge.amount:.2f} {charge.currency.upper()} for {name}'s phone credits "
               f"failed: {charge.failure_message} ({wallet.last_failure_code or 'declined'}).\n\n{what}\n\n"
               f"Current balance: {wallet.balance:.2f} {wallet.currency.upper()}.\n{_resume_note(wallet)}— {agency}\n")
    if recipients:
        transaction.on_commit(lambda: send_mail(subject=f"{agency}: phone credit recharge failed for {name}",
                                                message=message, from_email=None, recipient_list=recipients))


def _resume_note(wallet: Wallet) -> str:
    if wallet.balance > 0:
        return ""
    needed = -wallet.balance + Decimal("0.01")
    return (f"Phone usage is suspended while the balance is not positive: at least {needed:.2f} "
            f"{wallet.currency.upper()} is needed to resume it.\n")


def _suspension_check(*, wallet: Wallet) -> None:
    if wallet.balance <= 0 and wallet.recharge_failed and wallet.suspended_at is None:
        from wallets.tasks import wallet_suspension_sync

        transaction.on_commit(lambda: wallet_suspension_sync.delay(wallet.pk))


def charge_succeeded_aftercare(*, wallet: Wallet, charge: Charge) -> None:
    """Inside the caller's transaction: a successful charge clears the failure state (and resumes phone usage)."""
    if wallet.recharge_state != Wallet.RechargeState.OK or wallet.failed_retries or wallet.next_retry_at:
        wallet.recharge_state = Wallet.RechargeState.OK
        wallet.failed_retries = 0
        wallet.next_retry_at = None
        wallet.last_failure_code = ""
        wallet.last_failure_message = ""
        wallet.save(update_fields=["recharge_state", "failed_retries", "next_retry_at", "last_failure_code",
                                   "last_failure_message"])
    if wallet.suspended_at is not None and wallet.balance > 0:
        from wallets.tasks import wallet_suspension_sync

        transaction.on_commit(lambda: wallet_suspension_sync.delay(wallet.pk))
