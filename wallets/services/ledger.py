"""The ledger's writers: every entry goes through here, with its wallet locked, and moves the balance (F())
in the same transaction. The database refuses anything else (see migration 0002)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from creditusage.services import entry_rollups_add
from rebill.tenancy import current_schema
from subaccounts.models import SubAccount
from wallets.locks import wallet_lock
from wallets.models import Wallet, WalletEntry

MICRO = Decimal("0.000001")


def wallet_ensure(*, subaccount: SubAccount | int) -> Wallet:
    subaccount_id = subaccount.pk if isinstance(subaccount, SubAccount) else subaccount
    wallet, _ = Wallet.objects.get_or_create(subaccount_id=subaccount_id)
    return wallet


def _last_seq(wallet: Wallet) -> int:
    last = WalletEntry.objects.filter(wallet=wallet).order_by("-seq").values_list("seq", flat=True).first()
    return int(last or 0)


def entry_append(*, wallet: Wallet, kind: str, amount: Decimal, **fields: Any) -> WalletEntry:
    """Append one entry to a wallet locked by the caller (inside its transaction) and move the balance."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("entry_append needs the caller's transaction (and its wallet lock)")
    amount = Decimal(amount)
    if not amount.is_finite() or amount != amount.quantize(MICRO):
        raise ValidationError("Amounts have at most 6 decimal places.")
    entry = WalletEntry.objects.create(wallet=wallet, seq=_last_seq(wallet) + 1, kind=kind, amount=amount,
                                       balance_after=wallet.balance + amount, **fields)
    Wallet.objects.filter(pk=wallet.pk).update(balance=F("balance") + amount)
    entry_rollups_add(wallet_id=wallet.pk, after_seq=entry.seq - 1)
    wallet.balance += amount
    return entry


@transaction.atomic
def wallet_adjust(*, wallet: Wallet, amount: Decimal, note: str, by: str) -> WalletEntry:
    """A correcting entry (entries are never edited): positive credits the client, negative debits."""
    if not note.strip():
        raise ValidationError("Say why the wallet is adjusted.")
    if amount == 0:
        raise ValidationError("An adjustment needs a non-zero amount.")
    locked = wallet_lock(wallet_id=wallet.pk)
    return entry_append(wallet=locked, kind=WalletEntry.Kind.ADJUSTMENT, amount=amount, note=note.strip()[:500],
                        created_by=by)


def charge_key(charge_id: int) -> str:
    """Our idempotency key for a charge: the same on every retry, unique across agencies."""
    return f"charge:{current_schema()}:{charge_id}"
