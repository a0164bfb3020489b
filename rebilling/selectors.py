"""Reads about phone rebilling, already scoped to the agency whose schema we are in.

Every state shown comes from agencies.plans.rebilling_decision. For lists, the per-sub-account facts are read as
plain columns (SubAccountFacts, kept by triggers); since an agency's sub-accounts fall into a few dozen combinations
of facts at most, the counts, the state filter and the state sort ask the policy once per combination, never per row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Q, QuerySet, Value

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
from phone.models import SubAccountProvider
from rebilling.models import AgencyMultiplier, MultiplierOverride, SubAccountFacts, SubAccountRebilling
from stripe_connect.models import ConnectedAccount
from stripe_connect.selectors import current_agency
from subaccounts.models import AuditEntry, Membership, SubAccount
from subaccounts.selectors import one_to_one_row

FACT_COLUMNS = ("provider", "provider_status", "has_admin", "has_card", "switched_on")
STATE_ORDER = [RebillingState.ENABLED, RebillingState.CAN_BE_ENABLED, RebillingState.DISABLED]
SORTS = {
    "name": "name, id", "-name": "name DESC, id DESC",
    "provider": "provider NULLS FIRST, name, id", "-provider": "provider DESC NULLS LAST, name DESC, id DESC",
    "state": "name, id", "-state": "name DESC, id DESC",  # within each state: see _slices
}


def rebilling_is_switched_on(*, subaccount: SubAccount) -> bool:
    return SubAccountRebilling.objects.filter(subaccount=subaccount, switched_on=True).exists()


# The agency's current Stripe account (NULL before it connects one), read by the query that needs it rather than
# by one more query ahead of it. Parameter: agency_id.
_CONNECTED_ACCOUNT = f"(SELECT account_id FROM {ConnectedAccount._meta.db_table} WHERE agency_id = %(agency_id)s)"  # noqa: S608


def _facts_sql(*, where: str = "") -> str:
    """One row per sub-account with what the decision needs, as plain columns (so filters and sorts on them
    stay cheap). A card counts only on the agency's current Stripe account: one saved on a previous account
    can't be charged. Parameters: agency_id, admin_role, plus whatever `where` names.

    Only table names and our own fragments are formatted into SQL here and below; every value is a parameter."""
    return f"""
        SELECT s.id, s.name, p.provider, p.status AS provider_status,
               EXISTS (SELECT FROM {Membership._meta.db_table} m JOIN {User._meta.db_table} u ON u.id = m.user_id
                       WHERE m.subaccount_id = s.id AND m.role = %(admin_role)s AND u.is_active) AS has_admin,
               COALESCE(b.stripe_account_id = {_CONNECTED_ACCOUNT} AND b.card_payment_method_id <> '', false)
                   AS has_card,
               COALESCE(r.switched_on, false) AS switched_on, {_CONNECTED_ACCOUNT} IS NOT NULL AS stripe_connected
        FROM {SubAccount._meta.db_table} s
        LEFT JOIN {SubAccountProvider._meta.db_table} p ON p.subaccount_id = s.id
        LEFT JOIN {BillingProfile._meta.db_table} b ON b.subaccount_id = s.id
        LEFT JOIN {SubAccountRebilling._meta.db_table} r ON r.subaccount_id = s.id
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


def rebilling_decisions_for(*, subaccount_ids: Iterable[int]) -> dict[int, RebillingDecision]:
    """The policy's answer for each of these sub-accounts, from one query (asked once per distinct set of facts)."""
    agency = current_agency()
    rows = _fetch(_facts_sql(where="WHERE s.id = ANY(%(ids)s)"),
                  {"agency_id": agency.pk, "admin_role": Membership.Role.ACCOUNT_ADMIN, "ids": list(subaccount_ids)})
    answers: dict[RebillingFacts, RebillingDecision] = {}
    decisions = {}
    for row in rows:
        facts = _facts(row, plan=agency.plan, stripe_connected=row["stripe_connected"])
        if facts not in answers:
            answers[facts] = rebilling_decision(facts)
        decisions[row["id"]] = answers[facts]
    return decisions


def rebilling_decision_for(*, subaccount: SubAccount) -> RebillingDecision:
    return rebilling_decisions_for(subaccount_ids=[subaccount.pk])[subaccount.pk]


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


_FACTS_OF_A_PAGE = f"""
    SELECT f.subaccount_id AS id, f.name, f.provider, f.provider_status, f.has_account_admin AS has_admin,
           (f.card_account_id <> '' AND f.card_account_id = {_CONNECTED_ACCOUNT}) IS TRUE AS has_card, f.switched_on
    FROM {SubAccountFacts._meta.db_table} f"""  # noqa: S608


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    """SubAccountFacts writes "no provider" as "" (so that a combination joins on plain equality)."""
    return {**row, "provider": row["provider"] or None, "provider_status": row["provider_status"] or None}


def _combinations_table(combinations: list[tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
    """Combinations of facts as an SQL VALUES list and its parameters."""
    rows, params = [], {}
    for n, values in enumerate(combinations):
        params.update({f"c{n}_{i}": value for i, value in enumerate(values)})
        rows.append("(" + ", ".join(f"%(c{n}_{i})s{_SQL_TYPES[i]}" for i in range(len(values))) + ")")
    return "VALUES " + ", ".join(rows), params


_SQL_TYPES = ["::text", "::text", "::boolean", "::boolean", "::boolean"]


def _slices(*, counts: dict[str, int], state: str, sort: str, offset: int,
            limit: int) -> list[tuple[str, int, int]]:
    """The (state, offset, limit) reads that make up one page: one read, filtered by `state` or not; sorted by
    state, the page's part of each state in turn (the counts say where each state starts), so that no read sorts
    every sub-account by state."""
    if not sort.endswith("state"):
        return [(state, offset, limit)] if counts.get(state, sum(counts.values())) else []
    slices = []
    for each in (reversed(STATE_ORDER) if sort.startswith("-") else STATE_ORDER):
        if state and each != state:
            continue
        if offset < counts[each] and limit > 0:
            taken = min(limit, counts[each] - offset)
            slices.append((str(each), offset, taken))
            limit -= taken
        offset = max(0, offset - counts[each])
    return slices


def phone_integration_page(*, state: str = "", query: str = "", sort: str = "name", page: int = 1,
                           per_page: int = 50) -> PhoneIntegrationPage:
    """One page of every sub-account's rebilling state, with counts per state (over the search).

    The facts are SubAccountFacts' (one narrow row per sub-account, kept by triggers). A first query groups the
    sub-accounts by their combination of facts (a few dozen at most) and the policy is asked once per combination;
    filtering and sorting by state join the page's query to those combinations' answers, so no rule is
    re-derived in SQL, and the default page is read straight off the name index."""
    agency = current_agency()
    plan = agency.plan
    params: dict[str, Any] = {"agency_id": agency.pk}
    where = ""
    if query:
        params["pattern"] = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = " WHERE f.name ILIKE %(pattern)s"
    state = state if state in RebillingState.values else ""
    sort = sort if sort in SORTS else "name"
    columns = ", ".join(FACT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}, count(*), {_CONNECTED_ACCOUNT} IS NOT NULL "  # noqa: S608
                       f"FROM ({_FACTS_OF_A_PAGE}{where}) f GROUP BY {columns}", params)
        fetched = cursor.fetchall()
        groups = {tuple(row[:-2]): row[-2] for row in fetched}
        stripe_connected = bool(fetched) and fetched[0][-1]  # with no sub-account to show, nothing asks
        decided = {combination: rebilling_decision(_facts(_stored(dict(zip(FACT_COLUMNS, combination, strict=True))),
                                                          plan=plan, stripe_connected=stripe_connected)).state
                   for combination in groups}
        counts = {str(s): 0 for s in STATE_ORDER}
        for combination, n in groups.items():
            counts[decided[combination]] += n
        matching = counts[state] if state else sum(counts.values())
        pages = max(1, math.ceil(matching / per_page))
        page = min(max(1, page), pages)  # past the end (e.g. a stale link): the last page
        window: list[dict[str, Any]] = []
        for slice_state, offset, limit in _slices(counts=counts, state=state, sort=sort,
                                                  offset=(page - 1) * per_page, limit=per_page):
            source = f"({_FACTS_OF_A_PAGE}{where}) f"
            if slice_state:
                # Only the combinations in this state: the page is then read off the name index.
                table, table_params = _combinations_table(
                    [combination for combination, answer in decided.items() if answer == slice_state])
                params.update(table_params)
                source = f"({source} JOIN ({table}) AS d ({columns}) USING ({columns})) f"
            cursor.execute(f"SELECT id, name, {columns} FROM {source} ORDER BY {SORTS[sort]} "  # noqa: S608
                           "LIMIT %(limit)s OFFSET %(offset)s", {**params, "limit": limit, "offset": offset})
            window += [_stored(dict(zip(["id", "name", *FACT_COLUMNS], row, strict=True)))
                       for row in cursor.fetchall()]
    rows = [PhoneIntegrationRow(subaccount_id=row["id"], name=row["name"], provider=row["provider"],
                                decision=rebilling_decision(_facts(row, plan=plan, stripe_connected=stripe_connected)))
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
    overrides: dict[str, Decimal]
    if subaccount is None:
        defaults, overrides = agency_multiplier_defaults(), {}
    else:
        defaults, overrides = _defaults_and_overrides(subaccount=subaccount)
    in_force = multipliers_in_force(plan=plan, agency_defaults=defaults, overrides=overrides)
    agency_level = multipliers_in_force(plan=plan, agency_defaults=defaults, overrides={})
    return [MultiplierRow(product=product, override=overrides.get(product), default=agency_level[product],
                          in_force=in_force[product]) for product in in_force]


def _defaults_and_overrides(*, subaccount: SubAccount) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """agency_multiplier_defaults() and subaccount_multiplier_overrides(subaccount=…), read in one query."""
    defaults: dict[str, Decimal] = {}
    overrides: dict[str, Decimal] = {}
    rows = AgencyMultiplier.objects.order_by().values_list(
        Value(False, output_field=BooleanField()), "product", "multiplier",
    ).union(MultiplierOverride.objects.filter(subaccount=subaccount).order_by().values_list(
        Value(True, output_field=BooleanField()), "product", "multiplier",
    ), all=True)
    for overriding, product, multiplier in rows:
        (overrides if overriding else defaults)[product] = multiplier
    return defaults, overrides


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
    settings = (one_to_one_row(subaccount=subaccount, related_name="rebilling")
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
