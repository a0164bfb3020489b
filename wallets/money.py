"""How much a recharge charges (DESIGN §5, §10)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from agencies.plans import MINIMUM_RECHARGE
from stripe_connect.money import currency_exponent


def round_up_to_minor_unit(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-currency_exponent(currency)), rounding=ROUND_CEILING)


def recharge_amount(*, balance: Decimal, top_up: Decimal, currency: str) -> Decimal:
    """One charge closes the whole shortfall: the top-up plus any negative balance, rounded up to the
    currency's minor unit, never below the minimum charge."""
    shortfall = max(Decimal(0), -balance)
    return max(round_up_to_minor_unit(top_up + shortfall, currency), MINIMUM_RECHARGE)
