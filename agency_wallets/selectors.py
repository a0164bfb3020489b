"""Reads about an agency's wallet with the platform, for its agency admins (Settings → Billing)."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from agencies.models import Agency
from agency_wallets.models import AgencyCardSetup, AgencyCharge, AgencyWallet, AgencyWalletEntry


@dataclass(frozen=True)
class AgencyBillingSummary:
    wallet: AgencyWallet | None
    recent: list[AgencyWalletEntry]
    in_flight: AgencyCharge | None
    last_failed: AgencyCharge | None = None

    @property
    def recharge_failed(self) -> bool:
        return self.wallet is not None and self.wallet.recharge_failed

    @property
    def action_required(self) -> bool:
        return self.wallet is not None and self.wallet.recharge_state == AgencyWallet.RechargeState.ACTION_REQUIRED


def agency_billing_summary(*, agency: Agency, recent: int = 10) -> AgencyBillingSummary:
    wallet = AgencyWallet.objects.filter(agency=agency).first()
    if wallet is None:
        return AgencyBillingSummary(wallet=None, recent=[], in_flight=None)
    return AgencyBillingSummary(
        wallet=wallet,
        recent=list(AgencyWalletEntry.objects.filter(wallet=wallet).order_by("-seq")[:recent]),
        in_flight=AgencyCharge.objects.filter(wallet=wallet, status__in=AgencyCharge.IN_FLIGHT).first(),
        last_failed=AgencyCharge.objects.filter(wallet=wallet, status=AgencyCharge.Status.FAILED)
        .order_by("-pk").first())


def agency_card_setup_for(*, agency: Agency, setup_id: int) -> AgencyCardSetup:
    """One of this agency's card setups, or 404 (another agency's id is not found)."""
    setup = AgencyCardSetup.objects.filter(wallet__agency=agency, pk=setup_id).first()
    if setup is None:
        raise Http404("No such card setup")
    return setup
