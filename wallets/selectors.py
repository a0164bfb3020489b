"""Reads about client wallets, for Company Billing (the client) and Manage Client (the agency, read-only)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from agencies.plans import Product, multipliers_in_force
from rebilling.models import MultiplierOverride, SubAccountRebilling
from rebilling.selectors import agency_multiplier_defaults, rebilling_decisions_for
from stripe_connect.selectors import current_agency
from subaccounts.models import SubAccount
from subaccounts.selectors import one_to_one_row
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
    settings: SubAccountRebilling | None = one_to_one_row(subaccount=subaccount, related_name="rebilling")
    wallet: Wallet | None = one_to_one_row(subaccount=subaccount, related_name="wallet")
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


@dataclass(frozen=True)
class RateableSubAccount:
    subaccount_id: int
    since: datetime
    multipliers: dict[Product, Decimal]


def subaccounts_rateable(*, subaccount_ids: Iterable[int]) -> dict[int, RateableSubAccount]:
    """Of these sub-accounts, those whose usage is rated now: switched on (since when) and enabled by the
    policy (agencies.plans.rebilling_decision), each with the multiplier in force per product. A handful of
    queries for any number of sub-accounts (the same facts rebilling.selectors.rebilling_decision_for reads)."""
    switched: dict[int, datetime] = {
        subaccount_id: since for subaccount_id, since in SubAccountRebilling.objects.filter(
            subaccount_id__in=sorted(set(subaccount_ids)), switched_on=True, switched_on_at__isnull=False,
        ).values_list("subaccount_id", "switched_on_at") if since is not None}
    if not switched:
        return {}
    plan = current_agency().plan
    enabled = [subaccount_id for subaccount_id, decision in rebilling_decisions_for(subaccount_ids=switched).items()
               if decision.is_enabled]
    defaults = agency_multiplier_defaults()
    overrides: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for subaccount_id, product, multiplier in (MultiplierOverride.objects.filter(subaccount_id__in=enabled)
                                               .values_list("subaccount_id", "product", "multiplier")):
        overrides[subaccount_id][product] = multiplier
    return {subaccount_id: RateableSubAccount(
                subaccount_id=subaccount_id, since=switched[subaccount_id],
                multipliers=multipliers_in_force(plan=plan, agency_defaults=defaults,
                                                 overrides=overrides[subaccount_id]))
            for subaccount_id in enabled}
