"""Phone providers and usage lines, in each agency's schema (DESIGN §4)."""

from django.db import models

from agencies.plans import PhoneProvider, Product
from subaccounts.models import SubAccount


class ProviderStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CREDENTIALS_INVALID = "credentials_invalid", "Credentials invalid"
    SUSPENDED = "suspended", "Suspended"


class SubAccountProvider(models.Model):
    """Which phone provider a sub-account uses, and how to read its usage.

    LC Phone: a Twilio subaccount under the platform's master account, read with the master
    credentials from the environment. Twilio: the agency's own account; its auth token is stored
    encrypted (phone.crypto) and only its last 4 characters are ever shown.
    """

    subaccount = models.OneToOneField(SubAccount, on_delete=models.CASCADE, related_name="phone_provider")
    provider = models.CharField(max_length=20, choices=PhoneProvider.choices)
    # Kept when the sub-account moves to Twilio, so moving back reuses the same LC Phone subaccount.
    lc_phone_account_sid = models.CharField(max_length=34, blank=True)
    twilio_account_sid = models.CharField(max_length=34, blank=True)
    twilio_auth_token_encrypted = models.TextField(blank=True)
    twilio_auth_token_last4 = models.CharField(max_length=4, blank=True)
    status = models.CharField(max_length=30, choices=ProviderStatus.choices, default=ProviderStatus.ACTIVE)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_pulled_at = models.DateTimeField(null=True, blank=True)
    # {"YYYY-MM-DD": when the newest stored read of the current account's day was taken}. Lines a pull left
    # untouched (nothing changed) keep their old fetched_at, so without this an older read committed after a
    # newer one could overwrite what the newer read confirmed. Kept here, not per line: the pull rewrites
    # this row anyway, so it costs no extra row writes.
    read_marks = models.JSONField(default=dict, blank=True)
    # {"YYYY-MM-DD": [the mark, a digest of that read's records of the day]}: a read whose records of a day are
    # those of the read holding the day's mark would change none of its lines, so they are not sent again.
    read_digests = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["subaccount"]
        constraints = [
            models.CheckConstraint(
                name="provider_has_its_account",
                condition=(
                    models.Q(provider=PhoneProvider.LC_PHONE) & ~models.Q(lc_phone_account_sid="")
                    | models.Q(provider=PhoneProvider.TWILIO)
                    & ~models.Q(twilio_account_sid="")
                    & ~models.Q(twilio_auth_token_encrypted="")
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subaccount}: {self.get_provider_display()}"

    @property
    def account_sid(self) -> str:
        """The Twilio account whose usage is this sub-account's."""
        return self.lc_phone_account_sid if self.provider == PhoneProvider.LC_PHONE else self.twilio_account_sid


class RetiredAccount(models.Model):
    """A Twilio account a sub-account stopped using (it changed provider or Twilio account).

    Its usage up to the day of the switch is still the sub-account's: the daily re-read keeps pulling it
    until `pull_until` (35 days on), so late corrections around the switch are billed. The agency's
    token of a Twilio account is kept (encrypted) until then for that alone.
    """

    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="retired_phone_accounts")
    provider = models.CharField(max_length=20, choices=PhoneProvider.choices)
    account_sid = models.CharField(max_length=34)
    twilio_auth_token_encrypted = models.TextField(blank=True)
    retired_at = models.DateTimeField()
    pull_until = models.DateTimeField()

    class Meta:
        ordering = ["subaccount", "retired_at"]
        constraints = [
            models.UniqueConstraint(fields=["subaccount", "account_sid"], name="one_retired_row_per_account"),
        ]

    def __str__(self) -> str:
        return f"{self.subaccount_id}: {self.account_sid} retired {self.retired_at:%Y-%m-%d}"


class UsageLine(models.Model):
    """Usage of one category by one sub-account on one UTC day, as last reported; updated in place.

    `cost` is the agency's cost: LC Phone — the price book (units added since the last pull are priced
    at the price in force when pulled); Twilio — Twilio's reported price. `revision` grows with every
    change, and every change appends one UsageDelta (same statement), so `cost` == Σ its deltas' cost.
    """

    # No index of its own: the unique key below starts with it.
    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="usage_lines", db_index=False)
    provider = models.CharField(max_length=20, choices=PhoneProvider.choices)
    # Part of the key: on the day a sub-account changes provider, both accounts have usage in the same categories.
    account_sid = models.CharField(max_length=34)
    category = models.CharField(max_length=64)
    day = models.DateField()
    product = models.CharField(max_length=20, choices=Product.choices)
    usage_unit = models.CharField(max_length=30)
    count = models.DecimalField(max_digits=18, decimal_places=6)
    units = models.DecimalField(max_digits=18, decimal_places=6)
    twilio_price = models.DecimalField(max_digits=18, decimal_places=6)
    # The price-book price applied to the latest units; null when the cost is Twilio's own price.
    unit_price = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    cost = models.DecimalField(max_digits=18, decimal_places=6)
    currency = models.CharField(max_length=3, default="usd")  # Twilio's price_unit, lowercase
    billed_cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    revision = models.PositiveIntegerField(default=1)
    # When the data was read from Twilio: an older read never overwrites a newer one.
    fetched_at = models.DateTimeField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["subaccount", "day", "category"]
        constraints = [
            # Column order serves reads too: a sub-account's lines by day range use this index.
            models.UniqueConstraint(
                fields=["subaccount", "day", "category", "account_sid"], name="one_usage_line_per_category_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.day} {self.category}: {self.units} {self.usage_unit}"


class UsageDelta(models.Model):
    """What one revision of a usage line changed: insert-only, never edited (DESIGN §4).

    Written by the same statement that upserts the line, so a line's `cost` always equals the sum of its
    deltas' `cost_delta`, and its revisions run 1, 2, 3... A downward correction is a negative delta.
    Deltas are what gets billed: once into the client's wallet, once into the agency's platform bill.
    """

    # No index of its own: the unique (line, revision) key serves every read by line.
    line = models.ForeignKey(UsageLine, on_delete=models.PROTECT, related_name="deltas", db_index=False)
    revision = models.PositiveIntegerField()
    units_delta = models.DecimalField(max_digits=18, decimal_places=6)
    # The price-book price the units of this change were priced at (new units: the price in force; a
    # shrink: the line's average price); null when the cost is Twilio's own price.
    unit_price = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    cost_delta = models.DecimalField(max_digits=18, decimal_places=6)
    currency = models.CharField(max_length=3)
    fetched_at = models.DateTimeField()

    class Meta:
        ordering = ["line", "revision"]
        constraints = [
            models.UniqueConstraint(fields=["line", "revision"], name="one_usage_delta_per_line_revision"),
        ]

    def __str__(self) -> str:
        return f"line {self.line_id} r{self.revision}: {self.units_delta:+} units, {self.cost_delta:+} {self.currency}"
