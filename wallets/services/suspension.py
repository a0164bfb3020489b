"""Suspension for non-payment (DESIGN §5) and what a new card does.

When the balance is ≤ 0 and the recharge has failed, the sub-account's phone usage is suspended at the provider: its
LC Phone subaccount (the platform's master account owns it), or the agency's own Twilio account only when Twilio says
it is a *subaccount* (its owner is another account) — never an agency's main account. It is resumed once a recharge
succeeds, unless a spend alert has paused it too (only an agency admin lifts that). Usage keeps being pulled and
debited throughout.
"""

from __future__ import annotations

import logging
from typing import Literal

from django.db import transaction
from django.utils import timezone

from agencies.plans import PhoneProvider
from creditusage.selectors import spend_alerts_paused
from phone.models import SubAccountProvider
from phone.twilio_access import TwilioAccess, provider_access, twilio_base_url, twilio_retry, twilio_timeout
from phone.usage_client import check_credentials, set_account_status
from wallets.locks import wallet_lock
from wallets.models import Charge, Wallet

logger = logging.getLogger(__name__)


def _should_be_suspended(wallet: Wallet) -> bool:
    return wallet.balance <= 0 and wallet.recharge_failed


def wallet_suspension_apply(*, wallet_id: int) -> str:
    """Make the provider match the wallet: suspended or active. Safe to run twice; the provider call is made
    outside any transaction, then the wallet records it (re-checking, so a recharge in between resumes)."""
    wallet = Wallet.objects.select_related("subaccount").get(pk=wallet_id)
    provider = SubAccountProvider.objects.filter(subaccount_id=wallet.subaccount_id).first()
    want: Literal["suspended", "active"] = "suspended" if _should_be_suspended(wallet) else "active"
    if (want == "suspended") == (wallet.suspended_at is not None):
        return "unchanged"
    if want == "active" and spend_alerts_paused(subaccount_id=wallet.subaccount_id).exists():
        # Paid, but a spend alert (suspected fraud) holds it too: the wallet lets go, the provider stays suspended.
        _suspended_at_record(wallet_id=wallet_id, want=want)
        return "kept paused by a spend alert"
    access = _suspendable_account(provider) if provider is not None else "no phone provider"
    if isinstance(access, str):
        logger.info("Wallet %s: provider not suspended (%s)", wallet_id, access)
        return "skipped"
    set_account_status(account_sid=access.account_sid, status=want, auth_sid=access.auth_sid,
                       auth_token=access.auth_token, base_url=twilio_base_url(), timeout=twilio_timeout(),
                       retry=twilio_retry())
    _suspended_at_record(wallet_id=wallet_id, want=want)
    logger.info("Wallet %s: Twilio account %s %s", wallet_id, access.account_sid, want)
    return want


@transaction.atomic
def _suspended_at_record(*, wallet_id: int, want: Literal["suspended", "active"]) -> None:
    locked = wallet_lock(wallet_id=wallet_id)
    locked.suspended_at = timezone.now() if want == "suspended" else None
    locked.save(update_fields=["suspended_at"])
    if (want == "suspended") != _should_be_suspended(locked):
        # The wallet changed while we called Twilio: go round again.
        from wallets.tasks import wallet_suspension_sync

        transaction.on_commit(lambda: wallet_suspension_sync.delay(wallet_id))


def _suspendable_account(provider: SubAccountProvider) -> TwilioAccess | str:
    """The account to suspend and the credentials to do it with, or why there is none. An agency's own Twilio
    account is asked of Twilio first: only a subaccount (owned by another account) is ever suspended."""
    if provider.provider == PhoneProvider.LC_PHONE:
        return provider_access(provider) if provider.lc_phone_account_sid else "no LC Phone subaccount yet"
    if not provider.twilio_account_sid or not provider.twilio_auth_token_encrypted:
        return "no Twilio credentials"
    access = provider_access(provider)
    account = check_credentials(account_sid=access.account_sid, auth_sid=access.auth_sid,
                                auth_token=access.auth_token, base_url=twilio_base_url(), timeout=twilio_timeout(),
                                retry=twilio_retry())
    if not account.owner_account_sid or account.owner_account_sid == account.sid:
        return f"{account.sid} is the agency's main Twilio account: never suspended"
    return access


@transaction.atomic
def wallet_card_replaced(*, subaccount_id: int) -> Charge | None:
    """A new card on file: a failed or waiting recharge is retried at once (and the retry schedule restarts)."""
    from wallets.services.charging import wallet_recharge_start
    from wallets.services.stripe_charging import wallet_recharge_ok

    wallet = Wallet.objects.filter(subaccount_id=subaccount_id).first()
    if wallet is None:
        return None
    wallet = wallet_lock(wallet_id=wallet.pk)
    wallet_recharge_ok(wallet=wallet)
    return wallet_recharge_start(wallet_id=wallet.pk)
