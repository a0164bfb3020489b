"""A sub-account's billing with the agency (agency schema): its Stripe customer and card on file, card setups,
payment requests (links emailed, customers linked), payment intents seen. Their audit rows go to the
sub-account audit log (subaccounts.AuditEntry)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from subaccounts.models import SubAccount

CARD_BRANDS = {"amex": "American Express", "diners": "Diners Club", "discover": "Discover", "jcb": "JCB",
               "mastercard": "Mastercard", "unionpay": "UnionPay", "visa": "Visa"}


class CardOnFile(models.Model):
    """A card kept at Stripe for off-session charges: the client's (BillingProfile, the agency's account) or the
    agency's (agency_wallets.AgencyWallet, the platform's account)."""

    card_payment_method_id = models.CharField(max_length=64, blank=True)
    card_brand = models.CharField(max_length=30, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def has_card(self) -> bool:
        return bool(self.card_payment_method_id)

    @property
    def card_brand_display(self) -> str:
        return CARD_BRANDS.get(self.card_brand, self.card_brand.title())


class BillingProfile(CardOnFile):
    """The sub-account as a Stripe customer on the agency's connected account, and its card on file."""

    subaccount = models.OneToOneField(SubAccount, on_delete=models.CASCADE, related_name="billing_profile")
    # The account the customer lives on: a customer of a previously connected account is not used.
    stripe_account_id = models.CharField(max_length=64, blank=True)
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    card_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_account_id", "stripe_customer_id"], condition=~Q(stripe_customer_id=""),
                name="one_subaccount_per_stripe_customer",
            )
        ]

    def __str__(self) -> str:
        return f"Billing of {self.subaccount_id}"


class StripeCardSetup(models.Model):
    """One attempt to add a card: a SetupIntent keyed by this row (abstract: a client's on the agency's account,
    an agency's on the platform's — agency_wallets.AgencyCardSetup)."""

    class Status(models.TextChoices):
        STARTED = "started", "Started"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    setup_intent_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @staticmethod
    def one_per_setup_intent(name: str) -> models.UniqueConstraint:
        return models.UniqueConstraint(fields=["setup_intent_id"], condition=~Q(setup_intent_id=""), name=name)


class CardSetup(StripeCardSetup):
    """One attempt to add a client's card: a SetupIntent on the agency's account, keyed by this row."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="card_setups")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    stripe_account_id = models.CharField(max_length=64)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [StripeCardSetup.one_per_setup_intent("one_card_setup_per_setup_intent")]

    def __str__(self) -> str:
        return f"Card setup {self.pk} ({self.status})"


class PaymentRequest(models.Model):
    """The agency asking the client for a card: a link emailed to account admins, or an existing customer linked."""

    class Kind(models.TextChoices):
        LINK_EMAILED = "link_emailed", "Payment link emailed"
        CUSTOMER_LINKED = "customer_linked", "Existing Stripe customer linked"

    class Status(models.TextChoices):
        SENT = "sent", "Sent"
        OPENED = "opened", "Opened"
        COMPLETED = "completed", "Completed"

    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="payment_requests")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    recipients = models.TextField(blank=True)
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.status})"


class PaymentIntentRecord(models.Model):
    """What Stripe last said about a PaymentIntent on the agency's account (the wallets feature acts on it)."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="payment_intents")
    stripe_account_id = models.CharField(max_length=64)
    payment_intent_id = models.CharField(max_length=64, unique=True)
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=40)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    last_event_type = models.CharField(max_length=100)
    failure_code = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.payment_intent_id} ({self.status})"
