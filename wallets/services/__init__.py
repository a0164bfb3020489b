"""Writes about client wallets: the ledger, rating, charging, failures, reconciliation and the audit."""

from wallets.services.audit import AuditFinding, wallets_audit
from wallets.services.charging import (
    RechargeRefused,
    add_balance_amount,
    charge_execute,
    charge_reconcile,
    charge_record,
    charge_record_from_stripe,
    charges_to_reconcile,
    wallet_add_balance_start,
    wallet_recharge_start,
)
from wallets.services.ledger import entry_append, wallet_adjust, wallet_ensure
from wallets.services.rating import RatingResult, subaccounts_to_rate, wallet_rate, wallets_rate

__all__ = [
    "AuditFinding", "RatingResult", "RechargeRefused", "add_balance_amount", "charge_execute", "charge_reconcile",
    "charge_record", "charge_record_from_stripe", "charges_to_reconcile", "entry_append", "subaccounts_to_rate",
    "wallet_add_balance_start", "wallet_adjust", "wallet_ensure", "wallet_rate", "wallet_recharge_start",
    "wallets_audit", "wallets_rate",
]
