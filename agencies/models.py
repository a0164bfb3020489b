from django.db import models
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.utils import get_public_schema_name

from agencies.plans import BillingPeriod, Plan


class Agency(TenantMixin):
    """One agency = one PostgreSQL schema. The public schema's row stands for the platform itself."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=40, unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.STARTER)
    billing_period = models.CharField(max_length=10, choices=BillingPeriod.choices, default=BillingPeriod.MONTHLY)
    created_at = models.DateTimeField(auto_now_add=True)
    # When beat's usage pull next visits this agency (its earliest sub-account due); null: nothing to pull.
    # Beat reads only this column, so an agency with nothing due costs nothing (DESIGN §12).
    usage_pull_due_at = models.DateTimeField(null=True, blank=True, default=timezone.now, db_index=True)

    # agencies.services.agency_create makes the schema (cloned from a migrated template, DESIGN §12).
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        verbose_name_plural = "agencies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_platform(self) -> bool:
        return self.schema_name == get_public_schema_name()


class Domain(DomainMixin):
    class Meta:
        ordering = ["-is_primary", "domain"]

    def __str__(self) -> str:
        return self.domain


class PlanChange(models.Model):
    """Each change of an agency's plan, and who made it; the rules it re-applied are in the sub-accounts' audit."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="plan_changes")
    old_plan = models.CharField(max_length=20, choices=Plan.choices)
    new_plan = models.CharField(max_length=20, choices=Plan.choices)
    changed_by = models.CharField(max_length=254)
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.agency_id}: {self.old_plan} → {self.new_plan}"
