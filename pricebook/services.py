"""Writes to the LC Phone price book: only ever a new row."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from people.models import User
from phone.categories import billable_category
from pricebook.models import LcPhonePrice

# A form submitted a moment after it was opened still counts as "now".
BACKDATING_TOLERANCE = timedelta(minutes=5)


def lc_phone_price_errors(*, category: str, unit: str, unit_price: Decimal, effective_from: datetime) -> dict[str, str]:
    errors: dict[str, str] = {}
    if billable_category(category) is None:
        errors["category"] = f"{category!r} is not a billable Twilio usage category."
    if not unit.strip():
        errors["unit"] = "Say what one unit is (e.g. segment, minute, number per month)."
    if not unit_price.is_finite() or unit_price < 0:
        errors["unit_price"] = "Enter a price of zero or more."
    elif unit_price != unit_price.quantize(Decimal("0.000001")):
        errors["unit_price"] = "Use at most 6 decimal places."
    # Already-priced usage keeps its price, so a backdated row would pretend to apply where it cannot.
    if effective_from < timezone.now() - BACKDATING_TOLERANCE:
        errors["effective_from"] = "A price applies from now or a future moment, never from the past."
    return errors


@transaction.atomic
def lc_phone_price_add(
    *, category: str, unit: str, unit_price: Decimal, effective_from: datetime | None = None, by: User | None
) -> LcPhonePrice:
    effective_from = effective_from or timezone.now()
    errors = lc_phone_price_errors(category=category, unit=unit, unit_price=unit_price, effective_from=effective_from)
    if errors:
        raise ValidationError(errors)
    return LcPhonePrice.objects.create(
        category=category, unit=unit.strip(), unit_price=unit_price, effective_from=effective_from, created_by=by
    )
