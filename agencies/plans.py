"""The plan table (DESIGN §3) as data, and the small policy functions everything else asks.

Pages and jobs never re-derive these rules: they call the functions below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

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


# Rebilling: the one decision every page and job asks ------------------------------------------------------------
class RebillingState(models.TextChoices):
    ENABLED = "enabled", "Phone rebilling enabled"
    CAN_BE_ENABLED = "can_be_enabled", "Phone rebilling can be enabled"
    DISABLED = "disabled", "Phone rebilling disabled"


class NextAction(models.TextChoices):
    MANAGE_CLIENT = "manage_client", "Go to Manage Client"
    UPGRADE_PLAN = "upgrade_plan", "Upgrade your plan"
    CHOOSE_PROVIDER = "choose_provider", "Choose a phone provider"
    USE_LC_PHONE = "use_lc_phone", "Use LC Phone on this sub-account"
    FIX_CREDENTIALS = "fix_credentials", "Fix the Twilio credentials"
    CONNECT_STRIPE = "connect_stripe", "Connect Stripe"
    ADD_ACCOUNT_ADMIN = "add_account_admin", "Add an account admin"
    ASK_FOR_CARD = "ask_for_card", "Ask the client for a card"


# Provider statuses (phone.models.ProviderStatus values) under which usage cannot be read, so nothing can be rebilled.
# A provider suspended for non-payment still counts as working: its usage keeps being recorded and billed.
PROVIDER_STATUSES_BLOCKING = frozenset({"credentials_invalid"})


@dataclass(frozen=True)
class RebillingFacts:
    """What the decision needs to know about one sub-account (plain values, so SQL can group by them)."""

    plan: str
    provider: str | None
    provider_status: str | None
    stripe_connected: bool
    has_account_admin: bool
    has_card: bool
    switched_on: bool


@dataclass(frozen=True)
class RebillingDecision:
    state: RebillingState
    reason: str
    action: NextAction

    @property
    def is_enabled(self) -> bool:
        return self.state == RebillingState.ENABLED

    @property
    def can_switch_on(self) -> bool:
        return self.state == RebillingState.CAN_BE_ENABLED


def _blocker(facts: RebillingFacts) -> tuple[str, NextAction] | None:
    """The first precondition that fails, in the order an agency fixes them, or None."""
    refusal = rebilling_refusal(plan=facts.plan, provider=facts.provider)
    if refusal is not None:
        if not plan_terms(facts.plan).rebilling_available:
            return refusal, NextAction.UPGRADE_PLAN
        if facts.provider is None:
            return refusal, NextAction.CHOOSE_PROVIDER
        return refusal, NextAction.USE_LC_PHONE
    if facts.provider_status in PROVIDER_STATUSES_BLOCKING:
        return ("Twilio rejects this sub-account's credentials, so its usage cannot be read.",
                NextAction.FIX_CREDENTIALS)
    if not facts.stripe_connected:
        return "Connect your agency's Stripe account: clients are charged through it.", NextAction.CONNECT_STRIPE
    if not facts.has_account_admin:
        return ("This sub-account has no account admin: only the client's account admins can add a card.",
                NextAction.ADD_ACCOUNT_ADMIN)
    if not facts.has_card:
        return "The client has no card on file yet.", NextAction.ASK_FOR_CARD
    return None


def rebilling_decision(facts: RebillingFacts) -> RebillingDecision:
    """Enabled, can be enabled or disabled; why; and what the agency does next.

    A sub-account switched on whose preconditions stop holding is *disabled* (nothing is rebilled) until they
    hold again; its switch stays on so that rebilling resumes by itself.
    """
    blocker = _blocker(facts)
    if blocker is not None:
        reason, action = blocker
        if facts.switched_on:
            reason = f"Switched on, but paused: {reason[0].lower()}{reason[1:]}"
        return RebillingDecision(RebillingState.DISABLED, reason, action)
    if facts.switched_on:
        return RebillingDecision(RebillingState.ENABLED, "Phone costs are rebilled to the client.",
                                 NextAction.MANAGE_CLIENT)
    return RebillingDecision(RebillingState.CAN_BE_ENABLED, "Everything is ready: switch it on in Manage Client.",
                             NextAction.MANAGE_CLIENT)


def multipliers_in_force(*, plan: str, agency_defaults: Mapping[str, Decimal],
                         overrides: Mapping[str, Decimal]) -> dict[Product, Decimal]:
    """The multiplier of every product: the plan's lock, else the sub-account's override, else the agency's
    default, else DEFAULT_MULTIPLIER. Empty on a plan without rebilling."""
    terms = plan_terms(plan)
    if not terms.rebilling_available:
        return {}
    return {
        product: effective_multiplier(plan=plan, chosen=overrides.get(product, agency_defaults.get(product)))
        for product in Product
    }


# Money the rules speak of -----------------------------------------------------------------------------------------
MINIMUM_RECHARGE = Decimal("0.50")  # Stripe's smallest USD charge
DEFAULT_AUTO_RECHARGE_AMOUNT = Decimal("10")
DEFAULT_AUTO_RECHARGE_THRESHOLD = Decimal("10")
AUTO_RECHARGE_MAXIMUM = Decimal("10000")
_MICRO = Decimal("0.000001")


def auto_recharge_errors(*, amount: Decimal, threshold: Decimal) -> dict[str, str]:
    """Why "add <amount> when the balance is below <threshold>" is refused, per field (empty: accepted). The same
    rules for a client's wallet and for an agency's wallet with the platform."""
    errors = {}
    if not amount.is_finite() or not MINIMUM_RECHARGE <= amount <= AUTO_RECHARGE_MAXIMUM:
        errors["amount"] = f"Choose an amount between ${MINIMUM_RECHARGE} and ${AUTO_RECHARGE_MAXIMUM:,}."
    elif amount != amount.quantize(Decimal("0.01")):
        errors["amount"] = "Use whole cents."
    if not threshold.is_finite() or not Decimal(0) <= threshold <= AUTO_RECHARGE_MAXIMUM:
        errors["threshold"] = f"Choose a threshold between $0 and ${AUTO_RECHARGE_MAXIMUM:,}."
    elif threshold != threshold.quantize(Decimal("0.01")):
        errors["threshold"] = "Use whole cents."
    return errors


def rebilled_amount(*, cost: Decimal, multiplier: Decimal) -> Decimal:
    """What the client pays for an agency cost: cost × multiplier, rounded half-up to 6 places, once."""
    return (cost * multiplier).quantize(_MICRO, rounding=ROUND_HALF_UP)


# Plan changes -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanChangeRules:
    old_plan: Plan
    new_plan: Plan
    # The new plan locks multipliers (or has no rebilling): every stored choice is dropped.
    multipliers_reset: bool
    # Rebilling is switched off for sub-accounts on these providers.
    providers_stopped: frozenset[PhoneProvider]

    @property
    def stops_all_rebilling(self) -> bool:
        return not plan_terms(self.new_plan).rebilling_available

    @property
    def multiplier_note(self) -> str:
        locked = plan_terms(self.new_plan).locked_multiplier
        return f"locked at {locked.normalize()}x" if locked is not None else "not rebilled"

    @property
    def summary(self) -> str:
        return f"Plan changed from {self.old_plan.label} to {self.new_plan.label}"


def plan_change_rules(*, old_plan: str, new_plan: str) -> PlanChangeRules:
    old, new = plan_terms(old_plan), plan_terms(new_plan)
    return PlanChangeRules(
        old_plan=old.plan, new_plan=new.plan,
        multipliers_reset=new.locked_multiplier is not None or not new.rebilling_available,
        providers_stopped=frozenset(PhoneProvider) - new.rebillable_providers,
    )
