"""Reads about phone rebilling, already scoped to the agency whose schema we are in.

Every state shown comes from agencies.plans.rebilling_decision. For lists, the per-sub-account facts are read in
one SQL query as plain columns; since an agency's sub-accounts fall into a few dozen combinations of facts at most,
the counts, the state filter and the state sort ask the policy once per combination, never per row.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

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
from billing.models import BillingProfile
from people.models import User
from phone.models import ProviderStatus, SubAccountProvider
from rebilling.models import AgencyMultiplier, MultiplierOverride, SubAccountRebilling
from stripe_connect.selectors import connected_account_for_agency, current_agency
from subaccounts.models import AuditEntry, Membership, SubAccount

FACT_COLUMNS = ("provider", "provider_status", "has_admin", "has_card", "switched_on")
STATE_ORDER = [RebillingState.ENABLED, RebillingState.CAN_BE_ENABLED, RebillingState.DISABLED]
SORTS = {
    "name": "name, id", "-name": "name DESC, id DESC",
    "provider": "provider NULLS FIRST, name, id", "-provider": "provider DESC NULLS LAST, name DESC, id DESC",
    "state": "state_rank, name, id", "-state": "state_rank DESC, name DESC, id DESC",
}


def rebilling_is_switched_on(*, subaccount: SubAccount) -> bool:
    return SubAccountRebilling.objects.filter(subaccount=subaccount, switched_on=True).exists()


def _connected_account_id() -> str | None:
    connected = connected_account_for_agency(agency=current_agency())
    return connected.account_id if connected is not None else None


def _facts_sql(*, where: str = "") -> str:
    """One row per sub-account with what the decision needs, as plain columns (so filters and sorts on them
    stay cheap). A card counts only on the agency's current Stripe account: one saved on a previous account
    can't be charged. Parameters: account_id, admin_role, plus whatever `where` names.

    Only table names and our own fragments are formatted into SQL here and below; every value is a parameter."""
    return f"""
        SELECT s.id, s.name, p.provider, p.status AS provider_status, a.subaccount_id IS NOT NULL AS has_admin,
               COALESCE(b.stripe_account_id = %(account_id)s AND b.card_payment_method_id <> '', false) AS has_card,
               COALESCE(r.switched_on, false) AS switched_on
        FROM {SubAccount._meta.db_table} s
        LEFT JOIN {SubAccountProvider._meta.db_table} p ON p.subaccount_id = s.id
        LEFT JOIN {BillingProfile._meta.db_table} b ON b.subaccount_id = s.id
        LEFT JOIN {SubAccountRebilling._meta.db_table} r ON r.subaccount_id = s.id
        LEFT JOIN (SELECT DISTINCT m.subaccount_id FROM {Membership._meta.db_table} m
                   JOIN {User._meta.db_table} u ON u.id = m.user_id
                   WHERE m.role = %(admin_role)s AND u.is_active) a ON a.subaccount_id = s.id
        {where}"""  # noqa: S608


def _fetch(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _facts(row: dict[str, Any], *, plan: str, stripe_connected: bool) -> RebillingFacts:
    return RebillingFacts(
        plan=plan, provider=row["provider"], provider_status=row["provider_status"],
        stripe_connected=stripe_connected, has_account_admin=row["has_admin"], has_card=row["has_card"],
        switched_on=row["switched_on"],
    )


def rebilling_decision_for(*, subaccount: SubAccount) -> RebillingDecision:
    account_id = _connected_account_id()
    [row] = _fetch(_facts_sql(where="WHERE s.id = %(id)s"),
                   {"account_id": account_id, "admin_role": Membership.Role.ACCOUNT_ADMIN, "id": subaccount.pk})
    return rebilling_decision(_facts(row, plan=current_agency().plan, stripe_connected=account_id is not None))


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


def _decision_table(*, plan: str, stripe_connected: bool) -> tuple[str, dict[str, Any]]:
    """The policy's answer for every combination of facts a sub-account can have, as an SQL VALUES list
    (provider, provider_status, has_admin, has_card, switched_on, state, state_rank) and its parameters."""
    rows, params = [], {}
    providers = [None, *PhoneProvider.values]
    statuses = [None, *ProviderStatus.values]
    for n, combination in enumerate(itertools.product(providers, statuses, *[(False, True)] * 3)):
        state = rebilling_decision(_facts(dict(zip(FACT_COLUMNS, combination, strict=True)), plan=plan,
                                          stripe_connected=stripe_connected)).state
        values = (*combination, state.value, STATE_ORDER.index(state))
        params.update({f"d{n}_{i}": value for i, value in enumerate(values)})
        rows.append("(" + ", ".join(f"%(d{n}_{i})s{_SQL_TYPES[i]}" for i in range(len(values))) + ")")
    return "VALUES " + ", ".join(rows), params


# VALUES needs a type where a column's first value is NULL.
_SQL_TYPES = ["::text", "::text", "::boolean", "::boolean", "::boolean", "::text", "::integer"]


def phone_integration_page(*, state: str = "", query: str = "", sort: str = "name", page: int = 1,
                           per_page: int = 50) -> PhoneIntegrationPage:
    """One page of every sub-account's rebilling state, with counts per state (over the search), in one query.

    The policy is asked once per possible combination of facts, before the query; the query joins each
    sub-account to its combination's answer, so filtering and sorting by state never re-derive a rule."""
    plan = current_agency().plan
    account_id = _connected_account_id()
    table, params = _decision_table(plan=plan, stripe_connected=account_id is not None)
    params.update(account_id=account_id, admin_role=Membership.Role.ACCOUNT_ADMIN)
    where = ""
    if query:
        params["pattern"] = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = "WHERE s.name ILIKE %(pattern)s"
    state = state if state in RebillingState.values else ""
    sort = sort if sort in SORTS else "name"
    page = max(1, page)
    params.update(state=state, limit=per_page, offset=(page - 1) * per_page)
    sql = f"""
        WITH f AS MATERIALIZED ({_facts_sql(where=where)}),
        d (provider, provider_status, has_admin, has_card, switched_on, state, state_rank) AS ({table}),
        j AS MATERIALIZED (
            SELECT f.*, d.state, d.state_rank FROM f JOIN d
            ON f.provider IS NOT DISTINCT FROM d.provider AND f.provider_status IS NOT DISTINCT FROM d.provider_status
               AND f.has_admin = d.has_admin AND f.has_card = d.has_card AND f.switched_on = d.switched_on)
        (SELECT true AS is_count, state, count(*) AS n, NULL::bigint AS id, NULL::text AS name, NULL::text AS provider,
                NULL::text AS provider_status, NULL::boolean AS has_admin, NULL::boolean AS has_card,
                NULL::boolean AS switched_on
         FROM j GROUP BY state)
        UNION ALL
        (SELECT false, state, NULL, id, name, provider, provider_status, has_admin, has_card, switched_on
         FROM j WHERE %(state)s = '' OR state = %(state)s
         ORDER BY {SORTS[sort]} LIMIT %(limit)s OFFSET %(offset)s)"""  # noqa: S608
    counts = {str(s): 0 for s in STATE_ORDER}
    window = []
    for row in _fetch(sql, params):
        if row["is_count"]:
            counts[row["state"]] = row["n"]
        else:
            window.append(row)
    matching = counts[state] if state else sum(counts.values())
    pages = max(1, math.ceil(matching / per_page))
    if page > pages:  # past the end (e.g. a stale link): show the last page
        return phone_integration_page(state=state, query=query, sort=sort, page=pages, per_page=per_page)
    rows = [PhoneIntegrationRow(subaccount_id=row["id"], name=row["name"], provider=row["provider"],
                                decision=rebilling_decision(_facts(row, plan=plan,
                                                                   stripe_connected=account_id is not None)))
            for row in window]
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
