"""Agency wallets in a given state, and cards on the platform's own Stripe account."""

from __future__ import annotations

from decimal import Decimal

import stripe
from django.db import connection

from agencies.models import Agency
from agency_wallets.models import AgencyWallet, AgencyWalletEntry
from tests.billing.fixtures import customer_with_card


def agency_wallet_at(agency: Agency, balance: str, *, raw: stripe.StripeClient | None = None,
                     card_number: str = "4242424242424242") -> AgencyWallet:
    """The agency's wallet at `balance` (one adjustment entry), with a card on the platform's account when `raw`."""
    connection.set_schema_to_public()
    wallet, _ = AgencyWallet.objects.get_or_create(agency=agency)
    if Decimal(balance):
        AgencyWalletEntry.objects.create(wallet=wallet, seq=1, kind=AgencyWalletEntry.Kind.ADJUSTMENT,
                                         amount=Decimal(balance), balance_after=Decimal(balance), note="test")
        AgencyWallet.objects.filter(pk=wallet.pk).update(balance=Decimal(balance))
    if raw is not None:
        customer, pm = customer_with_card(raw, None, number=card_number, name=agency.name)  # type: ignore[arg-type]
        AgencyWallet.objects.filter(pk=wallet.pk).update(
            stripe_customer_id=customer.id, card_payment_method_id=pm.id, card_brand="visa",
            card_last4=card_number[-4:], card_exp_month=12, card_exp_year=2034)
    wallet.refresh_from_db()
    return wallet


def platform_intents(raw: stripe.StripeClient) -> list[stripe.PaymentIntent]:
    """PaymentIntents on the platform's own account (no Stripe-Account)."""
    return list(raw.v1.payment_intents.list(params={"limit": 100}).data)


def agency_wallets_truncate() -> None:
    """Remove every agency wallet and what hangs off it (for tests whose rows were committed)."""
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE agency_wallets_agencywalletentry, agency_wallets_agencycharge, "
                       "agency_wallets_agencycardsetup, agency_wallets_agencywallet")
