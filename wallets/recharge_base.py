"""What every prepaid wallet recharged by card shares — a client's wallet with its agency (wallets) and an agency's
wallet with the platform (agency_wallets): the recharge state a decline leaves behind, and the charge row that is
committed STARTED before Stripe is called. Abstract: each app keeps its own tables and constraints."""

from django.db import models
from django.db.models import Q


class RechargeableWallet(models.Model):
    class RechargeState(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "Recharge failed"
        ACTION_REQUIRED = "action_required", "Client must confirm the payment"

    currency = models.CharField(max_length=3, default="usd")
    balance = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    recharge_state = models.CharField(max_length=20, choices=RechargeState.choices, default=RechargeState.OK)
    # Automatic retries of a failed recharge done so far, and when the next one is due (null: none is).
    failed_retries = models.PositiveSmallIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    last_failure_code = models.CharField(max_length=100, blank=True)
    last_failure_message = models.CharField(max_length=500, blank=True)

    class Meta:
        abstract = True

    @property
    def recharge_failed(self) -> bool:
        return self.recharge_state != self.RechargeState.OK


class StripeCharge(models.Model):
    """One PaymentIntent. Committed as STARTED before Stripe is called; its idempotency key goes to Stripe as the
    key and in the metadata."""

    class Status(models.TextChoices):
        STARTED = "started", "Started"
        PROCESSING = "processing", "Processing"
        REQUIRES_ACTION = "requires_action", "Waiting for the client to confirm"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # Never reached Stripe (no PaymentIntent carries its key), or its account is no longer connected.
        ABANDONED = "abandoned", "Abandoned"

    IN_FLIGHT = (Status.STARTED, Status.PROCESSING, Status.REQUIRES_ACTION)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    amount = models.DecimalField(max_digits=18, decimal_places=6)
    currency = models.CharField(max_length=3)
    stripe_customer_id = models.CharField(max_length=64)
    payment_method_id = models.CharField(max_length=64)
    # Null only inside the creating transaction: the key is made from the row's own id.
    idempotency_key = models.CharField(max_length=120, unique=True, null=True)  # noqa: DJ001
    payment_intent_id = models.CharField(max_length=64, blank=True)
    failure_code = models.CharField(max_length=100, blank=True)
    decline_code = models.CharField(max_length=100, blank=True)
    advice_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    requested_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @staticmethod
    def wallet_constraints(*, in_flight: str, minimum: str) -> list[models.BaseConstraint]:
        """One charge in flight per wallet (a partial unique index), never below the minimum charge."""
        return [
            models.UniqueConstraint(fields=["wallet"], condition=Q(status__in=["started", "processing",
                                                                                "requires_action"]),
                                    name=in_flight),
            models.CheckConstraint(name=minimum, condition=Q(amount__gte="0.50")),
        ]
