"""What a declined recharge does (DESIGN §5): the charge records Stripe's codes, the wallet shows *recharge
failed*, account admins and agency admins are emailed, and retries are scheduled at 1 h, 6 h and 24 h unless
the decline says not to; `authentication_required` waits for the client to confirm on Company Billing."""

from __future__ import annotations

from decimal import Decimal

from django.core.mail import send_mail
from django.db import transaction

from people.models import User
from subaccounts.selectors import subaccount_account_admins
from wallets.models import Charge, Wallet
from wallets.services.stripe_charging import ChargeFailure, wallet_recharge_failed, wallet_recharge_ok


def _recipients(wallet: Wallet) -> list[str]:
    admins = list(subaccount_account_admins(subaccount=wallet.subaccount).values_list("email", flat=True))
    agency = list(User.objects.filter(role=User.Role.AGENCY_ADMIN, is_active=True).order_by("email")
                  .values_list("email", flat=True))
    return sorted(set(admins) | set(agency))


def charge_failed(*, wallet: Wallet, charge: Charge, failure: ChargeFailure) -> None:
    """Inside the caller's transaction, with wallet and charge locked (the charge has recorded the failure)."""
    if charge.kind != Charge.Kind.AUTO_RECHARGE:
        return  # the client saw Add balance fail on the page; the auto-recharge state is unchanged
    wallet_recharge_failed(wallet=wallet, failure=failure)
    _notify_failure(wallet=wallet, charge=charge, needs_client=failure.needs_the_card_holder)
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
    wallet_recharge_ok(wallet=wallet)
    if wallet.suspended_at is not None and wallet.balance > 0:
        from wallets.tasks import wallet_suspension_sync

        transaction.on_commit(lambda: wallet_suspension_sync.delay(wallet.pk))
