"""Which sub-account bills each Twilio account, platform-wide (public schema).

A Twilio account SID can be attached to one sub-account of one agency only, so two sub-accounts can never
both bill the same account's usage.
"""

from django.db import models

from agencies.models import Agency


class TwilioAccountClaim(models.Model):
    account_sid = models.CharField(max_length=34, unique=True)
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    subaccount_id = models.PositiveIntegerField()  # in the agency's schema
    claimed_at = models.DateTimeField(auto_now_add=True)
    # Set when the sub-account stops using the account: it is still pulled (late corrections) until then,
    # so nobody else may take it before.
    released_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["account_sid"]

    def __str__(self) -> str:
        return f"{self.account_sid} → {self.agency_id}/{self.subaccount_id}"


class UsageAlert(models.Model):
    """Something about an account's usage that platform staff must look at (Django admin)."""

    class Kind(models.TextChoices):
        TOTAL_MISMATCH = "total_mismatch", "Leaves do not add up to Twilio's totalprice"
        UNPRICED_CATEGORY = "unpriced_category", "LC Phone usage the price book has no price for"

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    subaccount_id = models.PositiveIntegerField()
    account_sid = models.CharField(max_length=34)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    day = models.DateField()
    category = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            # One alert per problem, updated by the next pull that sees it again.
            models.UniqueConstraint(fields=["account_sid", "kind", "day", "category"],
                                    name="one_usage_alert_per_problem"),
        ]

    def __str__(self) -> str:
        return f"{self.account_sid} {self.day}: {self.get_kind_display()}"
