"""Client wallets (agency schema, DESIGN §5): an insert-only ledger per rebilled sub-account, its balance, and
the charges that recharge it on the agency's Stripe account.

The database holds the invariants, not only the services: entries are insert-only and chained (each entry's
`balance_after` is the previous one's plus its amount, `seq` runs 1, 2, 3...), and a wallet's balance may only
become its latest entry's `balance_after` — so balance == Σ entries whatever code writes (migration 0001's
triggers). A usage delta is rated once (unique), a charge credits once (unique), and a wallet has at most one
charge in flight (partial unique index).
"""

from django.db import models
from django.db.models import Q

from agencies.plans import Product
from phone.models import UsageDelta
from subaccounts.models import SubAccount
from wallets.recharge_base import RechargeableWallet, StripeCharge


class Wallet(RechargeableWallet):
    subaccount = models.OneToOneField(SubAccount, on_delete=models.PROTECT, related_name="wallet")
    # Phone usage suspended at the provider for non-payment (DESIGN §5).
    suspended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"Wallet of {self.subaccount_id}: {self.balance} {self.currency.upper()}"


class Charge(StripeCharge):
    """One PaymentIntent on the agency's account; its idempotency key is `charge:<schema>:<id>`."""

    class Kind(models.TextChoices):
        AUTO_RECHARGE = "auto_recharge", "Auto-recharge"
        MANUAL = "manual", "Add balance"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="charges")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    stripe_account_id = models.CharField(max_length=64)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = StripeCharge.wallet_constraints(in_flight="one_charge_in_flight_per_wallet",
                                                      minimum="charge_amount_at_least_minimum")

    def __str__(self) -> str:
        return f"Charge {self.pk} {self.amount} {self.currency.upper()} ({self.status})"


class Refund(models.Model):
    """Part or all of a succeeded charge given back to the client's card (Stripe refund on the agency's account).
    Committed as STARTED before Stripe is called; its key `refund:<schema>:<id>` goes to Stripe."""

    class Status(models.TextChoices):
        STARTED = "started", "Started"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    charge = models.ForeignKey(Charge, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=18, decimal_places=6)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    # Null only inside the creating transaction: the key is made from the row's own id.
    idempotency_key = models.CharField(max_length=120, unique=True, null=True)  # noqa: DJ001
    stripe_refund_id = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    requested_by = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.CheckConstraint(name="refund_amount_positive", condition=Q(amount__gt=0))]

    def __str__(self) -> str:
        return f"Refund {self.pk} of charge {self.charge_id}: {self.amount} ({self.status})"


class WalletEntry(models.Model):
    """One line of the ledger. Insert-only; a positive amount credits the wallet, a negative one debits it."""

    class Kind(models.TextChoices):
        USAGE_DEBIT = "usage_debit", "Usage"
        USAGE_CREDIT = "usage_credit", "Usage correction"
        RECHARGE = "recharge", "Auto-recharge"
        MANUAL_TOP_UP = "manual_top_up", "Balance added"
        ADJUSTMENT = "adjustment", "Adjustment"
        REFUND = "refund", "Refund"

    USAGE_KINDS = (Kind.USAGE_DEBIT, Kind.USAGE_CREDIT)

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount = models.DecimalField(max_digits=18, decimal_places=6)
    balance_after = models.DecimalField(max_digits=18, decimal_places=6)
    # Usage entries: what was rated, at what multiplier, for which provider account.
    usage_delta = models.OneToOneField(UsageDelta, on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="wallet_entry")
    product = models.CharField(max_length=20, choices=Product.choices, blank=True)
    category = models.CharField(max_length=64, blank=True)
    day = models.DateField(null=True, blank=True)
    units_delta = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    cost_delta = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    multiplier = models.DecimalField(max_digits=8, decimal_places=4, null=True, blank=True)
    provider_account = models.CharField(max_length=34, blank=True)
    # Recharges and top-ups: the charge that paid (one credit per charge); refunds name it too.
    charge = models.ForeignKey(Charge, on_delete=models.PROTECT, null=True, blank=True, related_name="entries")
    # Refunds: the refund this entry records (one entry per refund).
    refund = models.OneToOneField(Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="entry")
    note = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["wallet", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["wallet", "seq"], name="wallet_entries_chained"),
            models.UniqueConstraint(fields=["charge"], condition=Q(kind__in=["recharge", "manual_top_up"]),
                                    name="one_credit_per_charge"),
            models.CheckConstraint(name="usage_entry_names_its_delta", condition=(
                Q(kind__in=["usage_debit", "usage_credit"], usage_delta__isnull=False, multiplier__isnull=False)
                | (~Q(kind__in=["usage_debit", "usage_credit"]) & Q(usage_delta__isnull=True)))),
            models.CheckConstraint(name="usage_debit_not_positive",
                                   condition=~Q(kind="usage_debit") | Q(amount__lte=0)),
            models.CheckConstraint(name="usage_credit_positive",
                                   condition=~Q(kind="usage_credit") | Q(amount__gt=0)),
            models.CheckConstraint(name="charge_credit_positive_and_named", condition=(
                ~Q(kind__in=["recharge", "manual_top_up"]) | Q(amount__gt=0, charge__isnull=False))),
            models.CheckConstraint(name="refund_negative", condition=~Q(kind="refund") | Q(amount__lt=0)),
            models.CheckConstraint(name="refund_entry_names_its_refund",
                                   condition=Q(kind="refund", refund__isnull=False) | ~Q(kind="refund")),
        ]
        indexes = [models.Index(fields=["wallet", "-created_at"], name="wallet_entries_recent")]

    def __str__(self) -> str:
        return f"{self.wallet_id}#{self.seq} {self.kind} {self.amount:+}"
