"""Reads of the LC Phone price book."""

from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet

from pricebook.models import LcPhonePrice


def lc_phone_prices_in_force(*, at: datetime) -> dict[str, Decimal]:
    """category -> unit price in force at `at` (the latest row that had taken effect by then)."""
    rows = (
        LcPhonePrice.objects.filter(effective_from__lte=at)
        .order_by("category", "-effective_from")
        .distinct("category")
        .values_list("category", "unit_price")
    )
    return dict(rows)


def lc_phone_price_history(*, category: str) -> QuerySet[LcPhonePrice]:
    return LcPhonePrice.objects.filter(category=category).order_by("-effective_from")
