"""Phone rebilling settings, in each agency's schema: who is rebilled, since when, at what multiplier (DESIGN §3, §8).

Whether a sub-account *may* be rebilled is decided by agencies.plans.rebilling_decision; these rows only hold
what the agency chose.
"""

from django.contrib.postgres.indexes import GinIndex
from django.db import models

from agencies.plans import (
    DEFAULT_AUTO_RECHARGE_AMOUNT,
    DEFAULT_AUTO_RECHARGE_THRESHOLD,
    MINIMUM_RECHARGE,
    Product,
)
from subaccounts.models import SubAccount


class SubAccountRebilling(models.Model):
    """The agency's switch and auto-recharge choice for one sub-account."""

    subaccount = models.OneToOneField(SubAccount, on_delete=models.CASCADE, related_name="rebilling")
    switched_on = models.BooleanField(default=False)
    # Usage fetched before this moment is never billed to the client.
    switched_on_at = models.DateTimeField(null=True, blank=True)
    switched_on_by = models.CharField(max_length=254, blank=True)
    switched_off_at = models.DateTimeField(null=True, blank=True)
    # "Add <amount> when the balance is below <threshold>" (the wallet charges the client's card).
    auto_recharge_amount = models.DecimalField(max_digits=18, decimal_places=6,
                                               default=DEFAULT_AUTO_RECHARGE_AMOUNT)
    auto_recharge_threshold = models.DecimalField(max_digits=18, decimal_places=6,
                                                  default=DEFAULT_AUTO_RECHARGE_THRESHOLD)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["subaccount"]
        constraints = [
            models.CheckConstraint(name="auto_recharge_amount_at_least_minimum",
                                   condition=models.Q(auto_recharge_amount__gte=MINIMUM_RECHARGE)),
            models.CheckConstraint(name="auto_recharge_threshold_not_negative",
                                   condition=models.Q(auto_recharge_threshold__gte=0)),
            # Rating bills usage fetched from this moment on: a switch that is on without it would never bill.
            models.CheckConstraint(name="switched_on_says_since_when",
                                   condition=models.Q(switched_on=False) | models.Q(switched_on_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"Rebilling of {self.subaccount_id}: {'on' if self.switched_on else 'off'}"


class AgencyMultiplier(models.Model):
    """The agency-wide default multiplier of one product (Pro); a sub-account without an override follows it."""

    product = models.CharField(max_length=20, choices=Product.choices, unique=True)
    multiplier = models.DecimalField(max_digits=8, decimal_places=4)

    class Meta:
        ordering = ["product"]
        constraints = [models.CheckConstraint(name="agency_multiplier_in_bounds",
                                              condition=models.Q(multiplier__gte=1, multiplier__lte=10))]

    def __str__(self) -> str:
        return f"{self.product}: {self.multiplier}x"


class MultiplierOverride(models.Model):
    """One sub-account's own multiplier for one product (Pro); absent = follow the agency's default."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="multiplier_overrides")
    product = models.CharField(max_length=20, choices=Product.choices)
    multiplier = models.DecimalField(max_digits=8, decimal_places=4)

    class Meta:
        ordering = ["subaccount", "product"]
        constraints = [
            models.UniqueConstraint(fields=["subaccount", "product"], name="one_override_per_product"),
            models.CheckConstraint(name="override_multiplier_in_bounds",
                                   condition=models.Q(multiplier__gte=1, multiplier__lte=10)),
        ]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.product}: {self.multiplier}x"


class SubAccountFacts(models.Model):
    """What agencies.plans.rebilling_decision needs to know about one sub-account, one row each, so that
    Settings → Phone Integration counts, filters and sorts thousands of sub-accounts off one narrow table instead of
    joining five. The plan and the Stripe connection are agency-wide and read when the page is asked for, so a
    plan change or a reconnection never rewrites these rows.

    Kept by database triggers (migration 0003) in the same transaction as every write to the rows the facts come
    from — whichever code writes them (services, bulk updates, the admin). The application never writes here.
    """

    subaccount = models.OneToOneField(SubAccount, on_delete=models.DO_NOTHING, primary_key=True, related_name="+")
    name = models.CharField(max_length=150)
    provider = models.CharField(max_length=20, blank=True)  # "" without a provider
    provider_status = models.CharField(max_length=30, blank=True)
    has_account_admin = models.BooleanField()
    # The Stripe account the card on file was saved on ("" without a card): it counts only on the current one.
    card_account_id = models.CharField(max_length=64, blank=True)
    switched_on = models.BooleanField()

    class Meta:
        ordering = ["name", "subaccount"]
        indexes = [
            models.Index(fields=["name", "subaccount"], name="facts_by_name"),
            # Phone Integration's search (name ILIKE '%…%') reads matches off trigrams instead of every name.
            GinIndex(fields=["name"], name="facts_name_trigrams", opclasses=["gin_trgm_ops"]),
        ]

    def __str__(self) -> str:
        return f"Rebilling facts of {self.subaccount_id}"
