"""Agency-wallet jobs: public schema only, one service each."""

from __future__ import annotations

from celery import shared_task

from agency_wallets.services import agency_wallets_bill


@shared_task
def agency_wallets_bill_task() -> int:
    return agency_wallets_bill().entries
