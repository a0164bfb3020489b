"""Agency-wallet jobs: public schema only, one service each; every one is safe twice and at once."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from agency_wallets.charging import (
    agency_charge_execute,
    agency_charge_reconcile,
    agency_charges_to_reconcile,
    agency_wallet_card_replaced,
    agency_wallet_recharge_start,
    agency_wallets_audit,
    agency_wallets_due_for_recharge,
    agency_wallets_due_for_retry,
)
from agency_wallets.services import agency_wallets_bill
from wallets.crashpoints import crash_point
from wallets.tasks import TRANSIENT


def _send_charge(charge_id: int) -> None:
    transaction.on_commit(partial(agency_charge_execute_task.delay, charge_id))


def _recharges_start(wallet_ids: list[int], *, retry: bool = False) -> int:
    started = 0
    for wallet_id in wallet_ids:
        charge = agency_wallet_recharge_start(wallet_id=wallet_id, retry=retry)
        if charge is not None:
            _send_charge(charge.pk)
            started += 1
    return started


@shared_task
def agency_wallets_bill_task() -> int:
    """Bill the queued LC Phone usage, then start the recharges it made due."""
    entries = agency_wallets_bill().entries
    _recharges_start(agency_wallets_due_for_recharge())
    return entries


@shared_task(autoretry_for=TRANSIENT, retry_backoff=5, retry_backoff_max=600, max_retries=8)
def agency_charge_execute_task(charge_id: int) -> str:
    charge = agency_charge_execute(charge_id=charge_id)
    crash_point("after_commit")
    return str(charge.status)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, max_retries=5)
def agency_charge_reconcile_task(charge_id: int) -> str:
    return str(agency_charge_reconcile(charge_id=charge_id).status)


@shared_task
def agency_wallet_charges_maintain() -> int:
    """Every 15 minutes: reconcile charges stuck STARTED/processing; start the retries that are due."""
    stuck = agency_charges_to_reconcile()
    for charge_id in stuck:
        transaction.on_commit(partial(agency_charge_reconcile_task.delay, charge_id))
    return len(stuck) + _recharges_start(agency_wallets_due_for_retry(), retry=True) \
        + _recharges_start(agency_wallets_due_for_recharge())


@shared_task
def agency_wallet_card_replaced_task(wallet_id: int) -> bool:
    """A new card retries a failed recharge at once."""
    charge = agency_wallet_card_replaced(wallet_id=wallet_id)
    if charge is not None:
        _send_charge(charge.pk)
    return charge is not None


@shared_task
def agency_wallets_audit_task() -> int:
    """Daily: every agency's wallet with the platform against its ledger and the platform's Stripe account."""
    return len(agency_wallets_audit(stripe_since=timezone.now() - timedelta(days=2)))
