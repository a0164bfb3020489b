"""The LC Phone price book (public schema): what the platform charges agencies per unit of LC Phone usage.

Append-only: a price change is a new row with a later `effective_from`, so the price in force at any
moment can always be told and past pricing explained.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from phone.categories import BILLABLE

CATEGORY_CHOICES = [(name, name) for name in sorted(BILLABLE)]


class LcPhonePrice(models.Model):
    category = models.CharField(max_length=64, choices=CATEGORY_CHOICES, help_text="Twilio usage category (a leaf).")
    unit = models.CharField(max_length=40, help_text="What one unit is, e.g. segment, minute, number per month.")
    unit_price = models.DecimalField(max_digits=18, decimal_places=6, help_text="USD per unit.")
    effective_from = models.DateTimeField(
        default=timezone.now, help_text="Usage pulled from then on is priced at this."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "LC Phone price"
        ordering = ["category", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["category", "effective_from"], name="one_lc_phone_price_per_moment"),
            models.CheckConstraint(condition=models.Q(unit_price__gte=0), name="lc_phone_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.category}: ${self.unit_price}/{self.unit} from {self.effective_from:%Y-%m-%d %H:%M}"
