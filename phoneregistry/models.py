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
