"""Reads about phone rebilling, already scoped to the agency whose schema we are in.

Every state shown comes from agencies.plans.rebilling_decision. For lists, the per-sub-account facts are read in
SQL; since an agency's sub-accounts fall into a few dozen combinations of facts at most, counts, the state filter
and the state sort ask the policy once per combination, never per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, Case, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce

from agencies.plans import (
    PhoneProvider,
    Product,
    RebillingDecision,
    RebillingFacts,
    RebillingState,
    multipliers_in_force,
    plan_terms,
    rebilling_decision,
)
from rebilling.models import AgencyMultiplier, MultiplierOverride, SubAccountRebilling
from stripe_connect.selectors import connected_account_for_agency, current_agency
from subaccounts.models import AuditEntry, Membership, SubAccount

FACT_FIELDS = ("fact_provider", "fact_provider_status", "fact_has_admin", "fact_has_card", "fact_switched_on")
STATE_ORDER = [RebillingState.ENABLED, RebillingState.CAN_BE_ENABLED, RebillingState.DISABLED]
SORTS = {
    "name": ("name", "pk"), "-name": ("-name", "-pk"),
    "provider": ("fact_provider", "name", "pk"), "-provider": ("-fact_provider", "-name", "-pk"),
    "state": ("state_rank", "name", "pk"), "-state": ("-state_rank", "-name", "-pk"),
}


def rebilling_is_switched_on(*, subaccount: SubAccount) -> bool:
    return SubAccountRebilling.objects.filter(subaccount=subaccount, switched_on=True).exists()


def _connected_account_id() -> str | None:
    connected = connected_account_for_agency(agency=current_agency())
    return connected.account_id if connected is not None else None


def subaccounts_with_facts() -> QuerySet[SubAccount]:
    """Every sub-account of this agency, annotated with what the rebilling decision needs to know about it."""
    account_id = _connected_account_id()
    # A card counts only on the agency's current Stripe account: one saved on a previous account can't be charged.
    has_card: Any = Value(False)
    if account_id is not None:
        has_card = Case(
            When(Q(billing_profile__stripe_account_id=account_id) & ~Q(billing_profile__card_payment_method_id=""),
                 then=Value(True)),
            default=Value(False), output_field=BooleanField(),
        )
    account_admins = Membership.objects.filter(subaccount=OuterRef("pk"), role=Membership.Role.ACCOUNT_ADMIN,
                                               user__is_active=True)
    return SubAccount.objects.annotate(
        fact_provider=F("phone_provider__provider"),
        fact_provider_status=F("phone_provider__status"),
        fact_has_admin=Exists(account_admins),
        fact_has_card=has_card,
        fact_switched_on=Coalesce(F("rebilling__switched_on"), Value(False)),
    )


def _facts(values: dict[str, Any], *, plan: str, stripe_connected: bool) -> RebillingFacts:
    return RebillingFacts(
        plan=plan, provider=values["fact_provider"], provider_status=values["fact_provider_status"],
        stripe_connected=stripe_connected, has_account_admin=bool(values["fact_has_admin"]),
        has_card=bool(values["fact_has_card"]), switched_on=bool(values["fact_switched_on"]),
    )


def rebilling_decision_for(*, subaccount: SubAccount) -> RebillingDecision:
    values = subaccounts_with_facts().filter(pk=subaccount.pk).values(*FACT_FIELDS).get()
    return rebilling_decision(_facts(values, plan=current_agency().plan,
                                     stripe_connected=_connected_account_id() is not None))


# Settings → Phone Integration ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhoneIntegrationRow:
    subaccount_id: int
    name: str
    provider: str | None
    decision: RebillingDecision

    @property
    def provider_label(self) -> str:
        return str(PhoneProvider(self.provider).label) if self.provider else "None"


@dataclass(frozen=True)
class PhoneIntegrationPage:
    rows: list[PhoneIntegrationRow]
    counts: dict[str, int]
    total: int
    matching: int
    page: int
    pages: int
    state: str
    query: str
    sort: str


def _combination_filter(combinations: list[dict[str, Any]]) -> Q:
    match = Q(pk__in=[])
    for combination in combinations:
        match |= Q(**combination)
    return match


def phone_integration_page(*, state: str = "", query: str = "", sort: str = "name", page: int = 1,
                           per_page: int = 50) -> PhoneIntegrationPage:
    """One page of every sub-account's rebilling state, with counts per state (over the search)."""
    plan = current_agency().plan
    stripe_connected = _connected_account_id() is not None
    subaccounts = subaccounts_with_facts()
    if query:
        subaccounts = subaccounts.filter(name__icontains=query)
    combinations = []
    counts = {str(s): 0 for s in STATE_ORDER}
    for values in subaccounts.values(*FACT_FIELDS).annotate(n=Count("pk")).order_by():
        n = values.pop("n")
        decided = rebilling_decision(_facts(values, plan=plan, stripe_connected=stripe_connected)).state
        counts[str(decided)] += n
        combinations.append((values, decided))
    state = state if state in counts else ""
    if state:
        subaccounts = subaccounts.filter(_combination_filter([v for v, s in combinations if s == state]))
    sort = sort if sort in SORTS else "name"
    if sort.lstrip("-") == "state":
        subaccounts = subaccounts.annotate(state_rank=Case(
            *[When(Q(**values), then=Value(STATE_ORDER.index(decided))) for values, decided in combinations],
            default=Value(len(STATE_ORDER)), output_field=IntegerField(),
        ))
    matching = counts[state] if state else sum(counts.values())
    pages = max(1, math.ceil(matching / per_page))
    page = min(max(1, page), pages)
    window = subaccounts.order_by(*SORTS[sort]).values("pk", "name", *FACT_FIELDS)[
        (page - 1) * per_page: page * per_page]
    rows = [
        PhoneIntegrationRow(subaccount_id=values["pk"], name=values["name"], provider=values["fact_provider"],
                            decision=rebilling_decision(_facts(values, plan=plan, stripe_connected=stripe_connected)))
        for values in window
    ]
    return PhoneIntegrationPage(rows=rows, counts=counts, total=sum(counts.values()), matching=matching, page=page,
                                pages=pages, state=state, query=query, sort=sort)


# Multipliers ------------------------------------------------------------------------------------------------------
def agency_multiplier_defaults() -> dict[str, Decimal]:
    return dict(AgencyMultiplier.objects.values_list("product", "multiplier"))


def subaccount_multiplier_overrides(*, subaccount: SubAccount) -> dict[str, Decimal]:
    return dict(MultiplierOverride.objects.filter(subaccount=subaccount).values_list("product", "multiplier"))


def multipliers_for(*, subaccount: SubAccount) -> dict[Product, Decimal]:
    """The multiplier in force for each product of this sub-account (empty on a plan without rebilling)."""
    return multipliers_in_force(plan=current_agency().plan, agency_defaults=agency_multiplier_defaults(),
                                overrides=subaccount_multiplier_overrides(subaccount=subaccount))


@dataclass(frozen=True)
class MultiplierRow:
    product: Product
    override: Decimal | None
    default: Decimal
    in_force: Decimal

    @property
    def label(self) -> str:
        return str(self.product.label)


def multiplier_rows(*, subaccount: SubAccount | None) -> list[MultiplierRow]:
    """Per product: the sub-account's override (if any), the agency's default and the multiplier in force."""
    plan = current_agency().plan
    defaults = agency_multiplier_defaults()
    overrides = subaccount_multiplier_overrides(subaccount=subaccount) if subaccount is not None else {}
    in_force = multipliers_in_force(plan=plan, agency_defaults=defaults, overrides=overrides)
    agency_level = multipliers_in_force(plan=plan, agency_defaults=defaults, overrides={})
    return [MultiplierRow(product=product, override=overrides.get(product), default=agency_level[product],
                          in_force=in_force[product]) for product in in_force]


def multipliers_editable() -> bool:
    """The agency chooses its multipliers (Pro); on Freelancer they are locked, on Starter there is no rebilling."""
    terms = plan_terms(current_agency().plan)
    return terms.rebilling_available and terms.locked_multiplier is None


# Manage Client → Phone System Resell Settings ---------------------------------------------------------------------
@dataclass(frozen=True)
class ResellSection:
    subaccount: SubAccount
    decision: RebillingDecision
    settings: SubAccountRebilling
    multipliers: list[MultiplierRow]
    multipliers_editable: bool
    locked_multiplier: Decimal | None
    rebilling_available: bool
    audit: list[AuditEntry]


def resell_section(*, subaccount: SubAccount) -> ResellSection:
    terms = plan_terms(current_agency().plan)
    settings = (SubAccountRebilling.objects.filter(subaccount=subaccount).first()
                or SubAccountRebilling(subaccount=subaccount))
    return ResellSection(
        subaccount=subaccount, decision=rebilling_decision_for(subaccount=subaccount), settings=settings,
        multipliers=multiplier_rows(subaccount=subaccount),
        multipliers_editable=multipliers_editable(),
        locked_multiplier=terms.locked_multiplier, rebilling_available=terms.rebilling_available,
        audit=list(subaccount_audit(subaccount=subaccount)[:20]),
    )


def subaccount_audit(*, subaccount: SubAccount) -> QuerySet[AuditEntry]:
    """The sub-account's audit log, with the agency-wide changes that applied to it, newest first."""
    return AuditEntry.objects.filter(Q(subaccount=subaccount) | Q(subaccount__isnull=True)).order_by(
        "-created_at", "-pk")
