"""Reads of the LC Phone price book."""

from datetime import datetime
from decimal import Decimal

from pricebook.models import LcPhonePrice


def lc_phone_prices_in_force(*, at: datetime) -> dict[str, Decimal]:
    """category -> unit price in force at `at` (the latest row that had taken effect by then).

    The usage store applies the same rule inside its upsert (phone/services/usage.py); a test holds them equal.
    """
    rows = (
        LcPhonePrice.objects.filter(effective_from__lte=at)
        .order_by("category", "-effective_from")
        .distinct("category")
        .values_list("category", "unit_price")
    )
    return dict(rows)

