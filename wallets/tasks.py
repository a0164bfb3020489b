"""Wallet jobs (DESIGN §9). Thin: each loads ids and calls one service; every one is safe twice and at once.

Beat runs `agencies.tasks.fan_out_to_agencies(<agency task>)` in public; the agency tasks fan out per sub-account
or per charge inside the agency's schema. Rating also runs after each usage pull (wallets.hooks).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

import stripe
from celery import shared_task
from django.db import transaction
from django.utils import timezone

from creditusage.services import spend_alerts_after_rating
from rebill.celery import AgencyTask
from wallets.crashpoints import crash_point
from wallets.models import Wallet
from wallets.services import (
    charge_execute,
    charge_reconcile,
    charges_to_reconcile,
    subaccounts_to_rate,
    wallet_rate,
    wallet_recharge_start,
    wallets_audit,
    wallets_rate,
)
from wallets.services.refunds import refund_resume, refunds_to_resume
from wallets.services.suspension import wallet_card_replaced, wallet_suspension_apply

log = logging.getLogger(__name__)
# Transient: Stripe unreachable, 5xx, rate limits, the same key still in flight (409). Declines are answers.
TRANSIENT = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError, stripe.IdempotencyError)


def _send_charge(charge_id: int) -> None:
    transaction.on_commit(partial(charge_execute_task.delay, charge_id))


def _recharge_if_due(wallet_id: int) -> None:
    charge = wallet_recharge_start(wallet_id=wallet_id)
    if charge is not None:
        _send_charge(charge.pk)


@shared_task(base=AgencyTask)
def wallet_rate_subaccount(subaccount_id: int) -> int:
    result = wallet_rate(subaccount_id=subaccount_id)
    if result.wallet_id is not None:
        _recharge_if_due(result.wallet_id)
    if result.entries:
        spend_alerts_after_rating(subaccount_ids=[subaccount_id])
    return result.entries


@shared_task(base=AgencyTask)
def wallet_rate_agency() -> int:
    """Everything new in the agency, rated set-based in batches (not one task per sub-account); then a recharge
    decision for each wallet that moved."""
    results = wallets_rate(subaccount_ids=subaccounts_to_rate())
    for result in results.values():
        if result.entries and result.wallet_id is not None:
            _recharge_if_due(result.wallet_id)
    spend_alerts_after_rating(subaccount_ids=[subaccount_id for subaccount_id, result in results.items()
                                              if result.entries])
    return sum(result.entries for result in results.values())


@shared_task(base=AgencyTask, autoretry_for=TRANSIENT, retry_backoff=5, retry_backoff_max=600, max_retries=8)
def charge_execute_task(charge_id: int) -> str:
    charge = charge_execute(charge_id=charge_id)
    crash_point("after_commit")
    return str(charge.status)


@shared_task(base=AgencyTask, autoretry_for=TRANSIENT, retry_backoff=30, max_retries=5)
def charge_reconcile_task(charge_id: int) -> str:
    return str(charge_reconcile(charge_id=charge_id).status)


@shared_task(base=AgencyTask, autoretry_for=TRANSIENT, retry_backoff=30, max_retries=5)
def refund_resume_task(refund_id: int) -> str:
    return str(refund_resume(refund_id=refund_id).status)


@shared_task(base=AgencyTask)
def wallet_charges_maintain_agency() -> int:
    """Every 15 minutes: reconcile charges stuck STARTED/processing and resume stuck refunds; start the retries
    that are due."""
    stuck = charges_to_reconcile()
    for charge_id in stuck:
        transaction.on_commit(partial(charge_reconcile_task.delay, charge_id))
    for refund_id in refunds_to_resume():
        transaction.on_commit(partial(refund_resume_task.delay, refund_id))
    due = list(Wallet.objects.filter(recharge_state=Wallet.RechargeState.FAILED, next_retry_at__lte=timezone.now())
               .order_by("pk").values_list("pk", flat=True))
    for wallet_id in due:
        charge = wallet_recharge_start(wallet_id=wallet_id, retry=True)
        if charge is not None:
            _send_charge(charge.pk)
    # Wallets below their threshold whose recharge did not start (e.g. a card added since): try now.
    for wallet_id in Wallet.objects.filter(recharge_state=Wallet.RechargeState.OK).order_by("pk").values_list(
            "pk", flat=True):
        charge = wallet_recharge_start(wallet_id=wallet_id)
        if charge is not None:
            _send_charge(charge.pk)
    return len(stuck) + len(due)


@shared_task(base=AgencyTask)
def wallet_audit_agency() -> int:
    findings = wallets_audit(stripe_since=timezone.now() - timedelta(days=2))
    return len(findings)


@shared_task(base=AgencyTask, autoretry_for=(Exception,), retry_backoff=30, retry_backoff_max=3600, max_retries=20)
def wallet_suspension_sync(wallet_id: int) -> str:
    return wallet_suspension_apply(wallet_id=wallet_id)


@shared_task(base=AgencyTask)
def wallet_card_replaced_task(subaccount_id: int) -> bool:
    """A new card retries a failed recharge at once."""
    charge = wallet_card_replaced(subaccount_id=subaccount_id)
    if charge is not None:
        _send_charge(charge.pk)
    return charge is not None
