"""The plan table (DESIGN §3) as data, and the small policy functions everything else asks.

Pages and jobs never re-derive these rules: they call the functions below.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import models


class Plan(models.TextChoices):
    STARTER = "starter", "Starter"
    FREELANCER = "freelancer", "Freelancer"
    PRO = "pro", "Pro"


class BillingPeriod(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    ANNUAL = "annual", "Annual"


class PhoneProvider(models.TextChoices):
    LC_PHONE = "lc_phone", "LC Phone"
    TWILIO = "twilio", "Twilio"


class Product(models.TextChoices):
    SMS = "sms", "SMS"
    MMS = "mms", "MMS"
    CALLS = "calls", "Calls"
    PHONE_NUMBERS = "phone_numbers", "Phone numbers"
    OTHER = "other", "Other carrier fees"


MULTIPLIER_MIN = Decimal("1.0000")
MULTIPLIER_MAX = Decimal("10.0000")
DEFAULT_MULTIPLIER = Decimal("1.0500")


@dataclass(frozen=True)
class PlanTerms:
    plan: Plan
    monthly_price: Decimal
    annual_price: Decimal
    rebillable_providers: frozenset[PhoneProvider]
    # None: the agency chooses (within MULTIPLIER_MIN..MULTIPLIER_MAX); otherwise fixed for every product.
    locked_multiplier: Decimal | None

    @property
    def rebilling_available(self) -> bool:
        return bool(self.rebillable_providers)

    def price(self, period: BillingPeriod) -> Decimal:
        return self.annual_price if period == BillingPeriod.ANNUAL else self.monthly_price


PLANS: dict[Plan, PlanTerms] = {
    Plan.STARTER: PlanTerms(Plan.STARTER, Decimal("97"), Decimal("970"), frozenset(), None),
    Plan.FREELANCER: PlanTerms(
        Plan.FREELANCER, Decimal("297"), Decimal("2970"), frozenset({PhoneProvider.LC_PHONE}), DEFAULT_MULTIPLIER
    ),
    Plan.PRO: PlanTerms(
        Plan.PRO,
        Decimal("497"),
        Decimal("4970"),
        frozenset({PhoneProvider.LC_PHONE, PhoneProvider.TWILIO}),
        None,
    ),
}


def plan_terms(plan: str) -> PlanTerms:
    try:
        return PLANS[Plan(plan)]
    except ValueError:
        raise ValueError(f"Unknown plan {plan!r}; choose one of: {', '.join(Plan.values)}") from None


def rebilling_refusal(*, plan: str, provider: str | None) -> str | None:
    """Why a sub-account on `provider` cannot be rebilled under `plan`, or None if it can."""
    terms = plan_terms(plan)
    if not terms.rebilling_available:
        return "Upgrade to Freelancer or Pro to rebill phone usage."
    if provider is None:
        return "Choose a phone provider for this sub-account first."
    if PhoneProvider(provider) not in terms.rebillable_providers:
        return "Use LeadConnector Phone on this sub-account to rebill (Twilio rebilling needs the Pro plan)."
    return None


def multiplier_is_editable(*, plan: str) -> bool:
    terms = plan_terms(plan)
    return terms.rebilling_available and terms.locked_multiplier is None


def effective_multiplier(*, plan: str, chosen: Decimal | None) -> Decimal:
    """The multiplier in force: the plan's lock if it has one, else the agency's choice (or the default)."""
    terms = plan_terms(plan)
    if terms.locked_multiplier is not None:
        return terms.locked_multiplier
    return chosen if chosen is not None else DEFAULT_MULTIPLIER


def multiplier_error(value: Decimal) -> str | None:
    if not value.is_finite():
        return "Enter a number."
    if value != value.quantize(Decimal("0.0001")):
        return "Use at most 4 decimal places."
    if not MULTIPLIER_MIN <= value <= MULTIPLIER_MAX:
        return f"Choose a multiplier between {MULTIPLIER_MIN:.2f}x and {MULTIPLIER_MAX:.2f}x."
    return None
