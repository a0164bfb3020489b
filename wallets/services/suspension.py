"""Suspension for non-payment (DESIGN §5) and what a new card does.

When the balance is ≤ 0 and the recharge has failed, the sub-account's LC Phone subaccount is suspended at the
provider (the platform's master account owns it); it is resumed once a recharge succeeds. Usage keeps being
pulled and debited throughout. An agency's own Twilio account is not suspended here (see the note below).
"""

from __future__ import annotations

import logging
from typing import Literal

from django.db import transaction
from django.utils import timezone

from agencies.plans import PhoneProvider
from phone.models import SubAccountProvider
from phone.twilio_access import master_access, twilio_base_url, twilio_retry, twilio_timeout
from phone.usage_client import set_account_status
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
    if provider is None or provider.provider != PhoneProvider.LC_PHONE or not provider.lc_phone_account_sid:
        # The agency's own Twilio account: suspending it needs proof it is a subaccount (never a main account).
        logger.info("Wallet %s: provider not suspended (not an LC Phone subaccount)", wallet_id)
        return "skipped"
    want: Literal["suspended", "active"] = "suspended" if _should_be_suspended(wallet) else "active"
    if (want == "suspended") == (wallet.suspended_at is not None):
        return "unchanged"
    master = master_access()
    set_account_status(account_sid=provider.lc_phone_account_sid, status=want, auth_sid=master.auth_sid,
                       auth_token=master.auth_token, base_url=twilio_base_url(), timeout=twilio_timeout(),
                       retry=twilio_retry())
    with transaction.atomic():
        locked = wallet_lock(wallet_id=wallet_id)
        locked.suspended_at = timezone.now() if want == "suspended" else None
        locked.save(update_fields=["suspended_at"])
        if (want == "suspended") != _should_be_suspended(locked):
            # The wallet changed while we called Twilio: go round again.
            from wallets.tasks import wallet_suspension_sync

            transaction.on_commit(lambda: wallet_suspension_sync.delay(wallet_id))
    logger.info("Wallet %s: LC Phone subaccount %s %s", wallet_id, provider.lc_phone_account_sid, want)
    return want


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
