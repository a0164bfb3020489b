"""Reads about client wallets, for Company Billing (the client) and Manage Client (the agency, read-only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from rebilling.models import SubAccountRebilling
from subaccounts.models import SubAccount
from wallets.models import Charge, Wallet, WalletEntry

RECENT_ENTRIES = 10


@dataclass(frozen=True)
class WalletSummary:
    subaccount: SubAccount
    wallet: Wallet | None
    rebilled: bool
    auto_recharge_amount: Decimal | None
    auto_recharge_threshold: Decimal | None
    recent: list[WalletEntry] = field(default_factory=list)
    in_flight: Charge | None = None
    last_failed: Charge | None = None

    @property
    def balance(self) -> Decimal:
        return self.wallet.balance if self.wallet is not None else Decimal(0)

    @property
    def recharge_failed(self) -> bool:
        return self.wallet is not None and self.wallet.recharge_failed

    @property
    def action_required(self) -> bool:
        return self.wallet is not None and self.wallet.recharge_state == Wallet.RechargeState.ACTION_REQUIRED


def wallet_summary(*, subaccount: SubAccount) -> WalletSummary:
    """The sub-account's wallet as its pages show it (only this sub-account's rows)."""
    settings = SubAccountRebilling.objects.filter(subaccount=subaccount).first()
    wallet = Wallet.objects.filter(subaccount=subaccount).first()
    recent: list[WalletEntry] = []
    in_flight = last_failed = None
    if wallet is not None:
        recent = list(WalletEntry.objects.filter(wallet=wallet).order_by("-seq")[:RECENT_ENTRIES])
        in_flight = Charge.objects.filter(wallet=wallet, status__in=Charge.IN_FLIGHT).first()
        last_failed = Charge.objects.filter(wallet=wallet, status=Charge.Status.FAILED).order_by("-pk").first()
    return WalletSummary(
        subaccount=subaccount, wallet=wallet, rebilled=bool(settings and settings.switched_on),
        auto_recharge_amount=settings.auto_recharge_amount if settings else None,
        auto_recharge_threshold=settings.auto_recharge_threshold if settings else None,
        recent=recent, in_flight=in_flight, last_failed=last_failed,
    )
