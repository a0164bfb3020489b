"""Credit usage details (agency schema, DESIGN §8): daily rollups of rated usage, kept in the rating's own
transaction so the agency dashboard never scans the ledger, and the spend alerts raised from them."""

from decimal import Decimal

from django.db import models
from django.db.models import Q

from agencies.plans import Product
from subaccounts.models import SubAccount


class UsageRollup(models.Model):
    """Σ of the usage entries of one sub-account for one usage day and product (wallets.WalletEntry)."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    product = models.CharField(max_length=20, choices=Product.choices)
    units = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    entries = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day", "subaccount", "product"]
        constraints = [models.UniqueConstraint(fields=["subaccount", "day", "product"], name="one_rollup_per_day")]
        indexes = [models.Index(fields=["day", "subaccount"], name="rollups_by_day")]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.day} {self.product}: {self.revenue}"


class SpendAlertPolicy(models.Model):
    """The agency's thresholds (one row per agency schema): alert when a day's spend passes
    `multiple` × the trailing 30-day daily average *and* `floor`."""

    singleton = models.BooleanField(default=True, unique=True)
    enabled = models.BooleanField(default=True)
    multiple = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("3.00"))
    floor = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("25.00"))
    auto_pause = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(name="spend_alert_multiple_above_one", condition=Q(multiple__gt=1)),
            models.CheckConstraint(name="spend_alert_floor_not_negative", condition=Q(floor__gte=0)),
            models.CheckConstraint(name="spend_alert_policy_singleton", condition=Q(singleton=True)),
        ]

    def __str__(self) -> str:
        return f"{self.multiple}x and ${self.floor}"


class DetailsSharing(models.Model):
    """The agency's choice (one row per agency schema, default off): may a sub-account's account users, not
    only its account admins, read Company Billing → See details and its CSV?"""

    singleton = models.BooleanField(default=True, unique=True)
    account_users_may_view = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(name="details_sharing_singleton", condition=Q(singleton=True))]

    def __str__(self) -> str:
        return "account users may view" if self.account_users_may_view else "account admins only"


class SpendAlert(models.Model):
    """At most one per sub-account and day (the unique constraint makes a second run a no-op)."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    spend = models.DecimalField(max_digits=18, decimal_places=6)
    trailing_average = models.DecimalField(max_digits=18, decimal_places=6)
    multiple = models.DecimalField(max_digits=8, decimal_places=2)
    floor = models.DecimalField(max_digits=18, decimal_places=2)
    paused = models.BooleanField(default=False)
    # An agency admin lifted the pause (the provider is resumed by a job after this commits).
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "-pk"]
        constraints = [models.UniqueConstraint(fields=["subaccount", "day"], name="one_spend_alert_per_day")]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.day}: {self.spend}"


class LedgerDayTotal(models.Model):
    """Σ of a wallet's entries per UTC day of `created_at`, product and sign (-1, 0, 1): the totals of any
    See details filter (days, credit/debit, product) are read from here, never by summing the ledger."""

    wallet = models.ForeignKey("wallets.Wallet", on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    product = models.CharField(max_length=20, blank=True)
    sign = models.SmallIntegerField()
    entries = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    usage_cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    usage_amount = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        ordering = ["wallet", "day", "product", "sign"]
        constraints = [models.UniqueConstraint(fields=["wallet", "day", "product", "sign"],
                                               name="one_ledger_total_per_day")]

    def __str__(self) -> str:
        return f"{self.wallet_id} {self.day} {self.product or '-'} {self.sign:+}: {self.amount}"


class UsageMonthRollup(models.Model):
    """UsageRollup summed per calendar month: the dashboard's month reads ~3 rows per sub-account, not ~90."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    month = models.DateField()  # the 1st
    product = models.CharField(max_length=20, choices=Product.choices)
    units = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    entries = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["month", "subaccount", "product"]
        constraints = [models.UniqueConstraint(fields=["month", "subaccount", "product"],
                                               name="one_month_rollup")]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.month:%Y-%m} {self.product}: {self.revenue}"


class AgencyDayRollup(models.Model):
    """UsageRollup summed over every sub-account, per usage day and product (the dashboard's daily chart)."""

    day = models.DateField()
    product = models.CharField(max_length=20, choices=Product.choices)
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        ordering = ["day", "product"]
        constraints = [models.UniqueConstraint(fields=["day", "product"], name="one_agency_day_rollup")]

    def __str__(self) -> str:
        return f"{self.day} {self.product}: {self.revenue}"


class SubAccountMonthTotal(models.Model):
    """UsageMonthRollup summed over products: the dashboard's top sub-accounts of a month come off its index."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    month = models.DateField()
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        ordering = ["month", "subaccount"]
        constraints = [models.UniqueConstraint(fields=["month", "subaccount"], name="one_month_total")]
        indexes = [models.Index("month", models.F("revenue").desc(), "subaccount", name="month_top_revenue")]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.month:%Y-%m}: {self.revenue}"


class UsageCostRollup(models.Model):
    """Σ of the usage deltas (phone.UsageDelta) of one sub-account per usage day and product: the agency's cost
    (LC Phone price book or the agency's own Twilio price) of *all* its usage, rebilled or not. Kept by a
    statement trigger on phone_usagedelta (migration 0006), in the transaction that writes the deltas."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    product = models.CharField(max_length=20, choices=Product.choices)
    units = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    deltas = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day", "subaccount", "product"]
        constraints = [models.UniqueConstraint(fields=["subaccount", "day", "product"], name="one_cost_rollup")]
        indexes = [models.Index(fields=["day", "subaccount"], name="cost_rollups_by_day")]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.day} {self.product}: {self.cost}"


class UsageCostMonthRollup(models.Model):
    """UsageCostRollup summed per calendar month (kept by the same trigger)."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    month = models.DateField()  # the 1st
    product = models.CharField(max_length=20, choices=Product.choices)
    units = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    deltas = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["month", "subaccount", "product"]
        constraints = [models.UniqueConstraint(fields=["month", "subaccount", "product"],
                                               name="one_cost_month_rollup")]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.month:%Y-%m} {self.product}: {self.cost}"


class AgencyCostDayRollup(models.Model):
    """UsageCostRollup summed over every sub-account, per usage day and product: the agency-wide provider cost of
    any range is ≤ 5 rows a day whatever the number of sub-accounts. Kept by the usage deltas' statement trigger
    (migration 0008), in the same statement as the per-sub-account cost rollups."""

    day = models.DateField()
    product = models.CharField(max_length=20, choices=Product.choices)
    units = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    deltas = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day", "product"]
        constraints = [models.UniqueConstraint(fields=["day", "product"], name="one_agency_cost_day_rollup")]

    def __str__(self) -> str:
        return f"{self.day} {self.product}: {self.cost}"


# A span is an aligned block of a month's days: `days` consecutive days (1, 2, 4, 8, 16, or 32 for the whole month)
# starting on a day-of-month offset that is a multiple of `days`. Any range of days is a few spans (one per whole
# month, at most 5 for the days it takes of the month it starts in and 5 for the month it ends in; at most 9 inside
# one month), so the per-sub-account figures of any range read a few rows per sub-account, never one per day.
SPAN_DAYS = (1, 2, 4, 8, 16, 32)


class SubAccountSpanTotal(models.Model):
    """UsageRollup summed over products per sub-account and span: revenue and the rebilled usage's cost."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    span_start = models.DateField()
    span_days = models.PositiveSmallIntegerField()
    revenue = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        ordering = ["span_days", "span_start", "subaccount"]
        constraints = [models.UniqueConstraint(fields=["span_days", "span_start", "subaccount"],
                                               name="one_span_total", include=["revenue", "cost"])]
        # Each span's sub-accounts by revenue: the dashboard's top sub-accounts of a range are found from the few
        # leaders of each span (dashboard._top_by_threshold), without summing every sub-account.
        indexes = [models.Index(fields=["span_days", "span_start", "-revenue"], include=["subaccount"],
                                name="span_top_revenue")]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.span_start}+{self.span_days}: {self.revenue}"


class SubAccountCostSpanTotal(models.Model):
    """UsageCostRollup summed over products per sub-account and span: the provider cost of all its usage. Kept by
    the usage deltas' statement trigger (migration 0008)."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    span_start = models.DateField()
    span_days = models.PositiveSmallIntegerField()
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        ordering = ["span_days", "span_start", "subaccount"]
        constraints = [models.UniqueConstraint(fields=["span_days", "span_start", "subaccount"],
                                               name="one_cost_span_total", include=["cost"])]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.span_start}+{self.span_days}: {self.cost}"


class SubAccountProductSpanTotal(models.Model):
    """SubAccountSpanTotal for one product: what the dashboard reads when it is filtered by product."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    product = models.CharField(max_length=20, choices=Product.choices)
    span_start = models.DateField()
    span_days = models.PositiveSmallIntegerField()
    revenue = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        ordering = ["span_days", "span_start", "product", "subaccount"]
        constraints = [models.UniqueConstraint(fields=["span_days", "span_start", "product", "subaccount"],
                                               name="one_product_span_total", include=["revenue", "cost"])]
        indexes = [models.Index(fields=["span_days", "span_start", "product", "-revenue"], include=["subaccount"],
                                name="product_span_top_revenue")]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.span_start}+{self.span_days} {self.product}: {self.revenue}"


class SubAccountProductCostSpanTotal(models.Model):
    """SubAccountCostSpanTotal for one product (kept by the usage deltas' statement trigger, migration 0010)."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    product = models.CharField(max_length=20, choices=Product.choices)
    span_start = models.DateField()
    span_days = models.PositiveSmallIntegerField()
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        ordering = ["span_days", "span_start", "product", "subaccount"]
        constraints = [models.UniqueConstraint(fields=["span_days", "span_start", "product", "subaccount"],
                                               name="one_product_cost_span_total", include=["cost"])]

    def __str__(self) -> str:
        return f"{self.subaccount_id} {self.span_start}+{self.span_days} {self.product}: {self.cost}"
