from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def multiplier(value: Decimal | None) -> str:
    """1.0500 → "1.05x", 2.2500 → "2.25x", 1.2345 → "1.2345x", 10 → "10.00x"."""
    if value is None:
        return ""
    text = f"{value:.4f}"
    whole, fraction = text.split(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}x"
