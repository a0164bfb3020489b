"""The agency's wallet with the platform (public schema, DESIGN §6): the platform bills each agency for its
sub-accounts' LC Phone usage at the price book, whether or not the agency rebills them.

Fed without visiting agency schemas: a trigger on every agency schema's usage deltas (wallets migration 0004)
appends each LC Phone delta to `UsageToBill`, here in public, in the pull's own transaction; billing drains that
queue. The work is proportional to the changes, not to the number of agencies.
"""

from django.db import models
from django.db.models import Q

from agencies.models import Agency
from agencies.plans import DEFAULT_AUTO_RECHARGE_AMOUNT, DEFAULT_AUTO_RECHARGE_THRESHOLD
from billing.models import CardOnFile, StripeCardSetup
from wallets.recharge_base import RechargeableWallet, StripeCharge


class AgencyWallet(RechargeableWallet, CardOnFile):
    agency = models.OneToOneField(Agency, on_delete=models.PROTECT, related_name="platform_wallet")
    # "Add $10 when below $10" unless the agency chooses otherwise (DESIGN §6).
    auto_recharge_amount = models.DecimalField(max_digits=18, decimal_places=6, default=DEFAULT_AUTO_RECHARGE_AMOUNT)
    auto_recharge_threshold = models.DecimalField(max_digits=18, decimal_places=6,
                                                  default=DEFAULT_AUTO_RECHARGE_THRESHOLD)
    # The agency's card, on the platform's own Stripe account (the agency is the platform's customer; not Connect).
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"Platform wallet of agency {self.agency_id}: {self.balance} {self.currency.upper()}"


class AgencyCardSetup(StripeCardSetup):
    """One attempt of an agency admin to add the agency's card: a SetupIntent on the platform's account."""

    wallet = models.ForeignKey(AgencyWallet, on_delete=models.PROTECT, related_name="card_setups")
    started_by = models.CharField(max_length=254)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [StripeCardSetup.one_per_setup_intent("one_agency_card_setup_per_setup_intent")]

    def __str__(self) -> str:
        return f"Agency card setup {self.pk} ({self.status})"


class AgencyCharge(StripeCharge):
    """One PaymentIntent on the platform's account recharging an agency's wallet; key `agency-charge:<id>`."""

    wallet = models.ForeignKey(AgencyWallet, on_delete=models.PROTECT, related_name="charges")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = StripeCharge.wallet_constraints(in_flight="one_agency_charge_in_flight_per_wallet",
                                                      minimum="agency_charge_amount_at_least_minimum")

    def __str__(self) -> str:
        return f"Agency charge {self.pk} {self.amount} {self.currency.upper()} ({self.status})"


class AgencyWalletEntry(models.Model):
    """One line of the agency's ledger with the platform. Insert-only; negative debits, positive credits."""

    class Kind(models.TextChoices):
        USAGE_DEBIT = "usage_debit", "LC Phone usage"
        USAGE_CREDIT = "usage_credit", "LC Phone usage correction"
        RECHARGE = "recharge", "Auto-recharge"
        ADJUSTMENT = "adjustment", "Adjustment"

    wallet = models.ForeignKey(AgencyWallet, on_delete=models.PROTECT, related_name="entries")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount = models.DecimalField(max_digits=18, decimal_places=6)
    balance_after = models.DecimalField(max_digits=18, decimal_places=6)
    # Usage entries: the delta (an id in the agency's own schema) and what it was.
    usage_delta_id = models.BigIntegerField(null=True, blank=True)
    category = models.CharField(max_length=64, blank=True)
    day = models.DateField(null=True, blank=True)
    units_delta = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    # Recharges: the charge that paid (one credit per charge).
    charge = models.ForeignKey(AgencyCharge, on_delete=models.PROTECT, null=True, blank=True, related_name="entries")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["wallet", "seq"]
        # See details filters by date: the range is found here, and its totals read off the index alone.
        indexes = [models.Index(fields=["wallet", "created_at"], include=["amount", "kind"],
                                name="agency_wallet_entries_by_date")]
        constraints = [
            models.UniqueConstraint(fields=["wallet", "seq"], name="agency_wallet_entries_chained"),
            # A wallet belongs to one agency, and a delta id to one agency schema: billed once.
            models.UniqueConstraint(fields=["wallet", "usage_delta_id"], condition=Q(usage_delta_id__isnull=False),
                                    name="agency_wallet_delta_billed_once"),
            models.CheckConstraint(name="agency_usage_entry_names_its_delta", condition=(
                Q(kind__in=["usage_debit", "usage_credit"], usage_delta_id__isnull=False)
                | (~Q(kind__in=["usage_debit", "usage_credit"]) & Q(usage_delta_id__isnull=True)))),
            models.UniqueConstraint(fields=["charge"], condition=Q(kind="recharge"),
                                    name="one_credit_per_agency_charge"),
            models.CheckConstraint(name="agency_recharge_positive_and_named", condition=(
                ~Q(kind="recharge") | Q(amount__gt=0, charge__isnull=False))),
        ]

    def __str__(self) -> str:
        return f"{self.wallet_id}#{self.seq} {self.kind} {self.amount:+}"


class UsageToBill(models.Model):
    """An LC Phone usage delta waiting to be billed to its agency: written by the agency schema's trigger in the
    pull's transaction, removed in the transaction that bills it."""

    schema_name = models.CharField(max_length=63)
    usage_delta_id = models.BigIntegerField()
    units_delta = models.DecimalField(max_digits=18, decimal_places=6)
    # At the price book: an LC Phone delta's cost is priced from it when it is pulled.
    cost_delta = models.DecimalField(max_digits=18, decimal_places=6)
    currency = models.CharField(max_length=3)
    category = models.CharField(max_length=64)
    day = models.DateField()
    queued_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.schema_name} delta {self.usage_delta_id}: {self.cost_delta:+} {self.currency}"
