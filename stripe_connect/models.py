"""Public-schema Stripe rows: which agency a connected Stripe account belongs to, and the webhook inbox."""

from django.db import models

from agencies.models import Agency


class ConnectedAccount(models.Model):
    """The agency's own Stripe account (Connect, Standard). One per agency; an account id maps to one agency."""

    agency = models.OneToOneField(Agency, on_delete=models.CASCADE, related_name="stripe_account")
    account_id = models.CharField(max_length=64, unique=True)
    livemode = models.BooleanField(default=False)
    display_name = models.CharField(max_length=200, blank=True)
    connected_by = models.EmailField(blank=True)
    connected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.account_id} → {self.agency_id}"


class WebhookEvent(models.Model):
    """Each Stripe event, stored once (unique event id) before it is handled."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        HANDLED = "handled", "Handled"
        FAILED = "failed", "Failed (Stripe will retry)"
        IGNORED = "ignored", "Ignored (no handler)"

    event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=100)
    account_id = models.CharField(max_length=64, blank=True)
    agency = models.ForeignKey(Agency, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.event_type} ({self.status})"
