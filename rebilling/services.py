"""Writes about phone rebilling: the switch, multipliers, auto-recharge, bulk changes, plan changes.

Every write asks agencies.plans (through rebilling.selectors) whether it is allowed, and records an audit row in
its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agencies.plans import (
    PlanChangeRules,
    Product,
    auto_recharge_errors,
    multiplier_error,
    plan_terms,
)
from people.models import User
from rebilling.models import AgencyMultiplier, MultiplierOverride, SubAccountRebilling
from rebilling.selectors import (
    agency_multiplier_defaults,
    rebilling_decision_for,
    subaccount_multiplier_overrides,
)
from stripe_connect.selectors import current_agency
from subaccounts.audit import audit_record
from subaccounts.models import AuditEntry, SubAccount


def _require_agency_admin(by: User) -> None:
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins change phone rebilling.")


def _settings_locked(subaccount: SubAccount) -> SubAccountRebilling:
    SubAccountRebilling.objects.get_or_create(subaccount=subaccount)
    return SubAccountRebilling.objects.select_for_update().get(subaccount=subaccount)


def _multipliers_text(multipliers: Mapping[str, Decimal]) -> dict[str, str]:
    return {product: f"{value:.4f}" for product, value in sorted(multipliers.items())}


# The switch -------------------------------------------------------------------------------------------------------
@transaction.atomic
def rebilling_switch_on(*, subaccount: SubAccount, by: User) -> SubAccountRebilling:
    """Start rebilling the client. Usage fetched before this moment is never billed to them."""
    _require_agency_admin(by)
    settings = _settings_locked(subaccount)
    if settings.switched_on:
        return settings
    decision = rebilling_decision_for(subaccount=subaccount)
    if not decision.can_switch_on:
        raise ValidationError(decision.reason)
    settings.switched_on = True
    settings.switched_on_at = timezone.now()
    settings.switched_on_by = by.email
    settings.save(update_fields=["switched_on", "switched_on_at", "switched_on_by", "updated_at"])
    audit_record(subaccount=subaccount, actor=by.email, action=AuditEntry.Action.REBILLING_ENABLED,
                 before={"switched_on": False}, after={"switched_on": True,
                                                       "switched_on_at": settings.switched_on_at.isoformat()})
    return settings


def _switch_off(settings: SubAccountRebilling, *, actor: str, why: str = "") -> None:
    settings.switched_on = False
    settings.switched_off_at = timezone.now()
    settings.save(update_fields=["switched_on", "switched_off_at", "updated_at"])
    after: dict[str, str | bool] = {"switched_on": False}
    if why:
        after["why"] = why
    audit_record(subaccount=settings.subaccount_id, actor=actor, action=AuditEntry.Action.REBILLING_DISABLED,
                 before={"switched_on": True}, after=after)


@transaction.atomic
def rebilling_switch_off(*, subaccount: SubAccount, by: User) -> SubAccountRebilling:
    _require_agency_admin(by)
    settings = _settings_locked(subaccount)
    if settings.switched_on:
        _switch_off(settings, actor=by.email)
    return settings


# Multipliers (Pro) ------------------------------------------------------------------------------------------------
def _require_editable_multipliers() -> None:
    terms = plan_terms(current_agency().plan)
    if not terms.rebilling_available:
        raise ValidationError("Your plan does not include phone rebilling. Upgrade to Freelancer or Pro.")
    if terms.locked_multiplier is not None:
        raise ValidationError(f"On the {terms.plan.label} plan every multiplier is locked at "
                              f"{terms.locked_multiplier.normalize()}x.")


def _checked(multipliers: Mapping[str, Decimal | None]) -> dict[str, Decimal | None]:
    errors: dict[str, str] = {}
    for product, value in multipliers.items():
        if product not in Product.values:
            errors[product] = f"Unknown product {product!r}."
        elif value is not None and (error := multiplier_error(value)):
            errors[product] = error
    if errors:
        raise ValidationError(errors)
    return dict(multipliers)


@transaction.atomic
def multipliers_set(*, subaccount: SubAccount, multipliers: Mapping[str, Decimal | None], by: User
                    ) -> dict[str, Decimal]:
    """Set this sub-account's own multiplier per product; None makes a product follow the agency's default."""
    _require_agency_admin(by)
    _require_editable_multipliers()
    chosen = _checked(multipliers)
    _settings_locked(subaccount)  # serializes concurrent edits of one sub-account
    before = subaccount_multiplier_overrides(subaccount=subaccount)
    for product, value in chosen.items():
        if value is None:
            MultiplierOverride.objects.filter(subaccount=subaccount, product=product).delete()
        else:
            MultiplierOverride.objects.update_or_create(subaccount=subaccount, product=product,
                                                        defaults={"multiplier": value})
    after = subaccount_multiplier_overrides(subaccount=subaccount)
    if after != before:
        audit_record(subaccount=subaccount, actor=by.email, action=AuditEntry.Action.MULTIPLIERS_CHANGED,
                     before=_multipliers_text(before), after=_multipliers_text(after))
    return after


@transaction.atomic
def agency_multipliers_set(*, multipliers: Mapping[str, Decimal | None], by: User) -> dict[str, Decimal]:
    """The agency-wide default per product (Settings → Rebilling); None goes back to the platform's default."""
    _require_agency_admin(by)
    _require_editable_multipliers()
    chosen = _checked(multipliers)
    before = agency_multiplier_defaults()
    for product, value in chosen.items():
        if value is None:
            AgencyMultiplier.objects.filter(product=product).delete()
        else:
            AgencyMultiplier.objects.update_or_create(product=product, defaults={"multiplier": value})
    after = agency_multiplier_defaults()
    if after != before:
        audit_record(subaccount=None, actor=by.email, action=AuditEntry.Action.AGENCY_MULTIPLIERS_CHANGED,
                     before=_multipliers_text(before), after=_multipliers_text(after))
    return after


# Auto-recharge ----------------------------------------------------------------------------------------------------
@transaction.atomic
def auto_recharge_set(*, subaccount: SubAccount, amount: Decimal, threshold: Decimal, by: User
                      ) -> SubAccountRebilling:
    """"Add <amount> when the balance is below <threshold>"; the amount is at least the minimum charge."""
    _require_agency_admin(by)
    errors = auto_recharge_errors(amount=amount, threshold=threshold)
    if errors:
        raise ValidationError(errors)
    settings = _settings_locked(subaccount)
    before = {"amount": f"{settings.auto_recharge_amount:.2f}", "threshold": f"{settings.auto_recharge_threshold:.2f}"}
    settings.auto_recharge_amount, settings.auto_recharge_threshold = amount, threshold
    settings.save(update_fields=["auto_recharge_amount", "auto_recharge_threshold", "updated_at"])
    after = {"amount": f"{amount:.2f}", "threshold": f"{threshold:.2f}"}
    if after != before:
        audit_record(subaccount=subaccount, actor=by.email, action=AuditEntry.Action.AUTO_RECHARGE_CHANGED,
                     before=before, after=after)
    return settings


# Bulk -------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BulkOutcome:
    subaccount_id: int
    name: str
    applied: bool
    message: str


def rebilling_bulk(*, subaccount_ids: Iterable[int], operation: str, by: User,
                   multipliers: Mapping[str, Decimal | None] | None = None) -> list[BulkOutcome]:
    """Apply one change to many sub-accounts, each in its own transaction: one refusal undoes nothing else."""
    _require_agency_admin(by)
    found = {s.pk: s for s in SubAccount.objects.filter(pk__in=list(subaccount_ids))}
    outcomes = []
    for subaccount_id in subaccount_ids:
        subaccount = found.get(subaccount_id)
        if subaccount is None:
            outcomes.append(BulkOutcome(subaccount_id, f"#{subaccount_id}", False, "No such sub-account."))
            continue
        try:
            message = _bulk_apply(subaccount=subaccount, operation=operation, by=by, multipliers=multipliers or {})
        except ValidationError as refusal:
            outcomes.append(BulkOutcome(subaccount.pk, subaccount.name, False, " ".join(refusal.messages)))
        else:
            outcomes.append(BulkOutcome(subaccount.pk, subaccount.name, True, message))
    return outcomes


BULK_OPERATIONS = {"switch_on": "Switch rebilling on", "switch_off": "Switch rebilling off",
                   "set_multipliers": "Set multipliers"}


def _bulk_apply(*, subaccount: SubAccount, operation: str, by: User, multipliers: Mapping[str, Decimal | None]
                ) -> str:
    if operation == "switch_on":
        rebilling_switch_on(subaccount=subaccount, by=by)
        return "Rebilling switched on."
    if operation == "switch_off":
        rebilling_switch_off(subaccount=subaccount, by=by)
        return "Rebilling switched off."
    if operation == "set_multipliers":
        if not multipliers:
            raise ValidationError("Enter at least one multiplier.")
        multipliers_set(subaccount=subaccount, multipliers=multipliers, by=by)
        return "Multipliers set."
    raise ValidationError(f"Unknown action {operation!r}.")


# Plan changes -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanChangeEffect:
    subaccount_id: int
    name: str
    changes: list[str]


def plan_rules_apply(*, rules: PlanChangeRules, actor: str) -> list[PlanChangeEffect]:
    """Re-apply the rules of the agency's new plan in its schema, in the caller's transaction.

    Stored multiplier choices are dropped when the new plan locks them (or has no rebilling), so a later upgrade
    starts from the default; rebilling is switched off for sub-accounts whose provider the plan no longer rebills.
    """
    effects: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    if rules.multipliers_reset:
        defaults = agency_multiplier_defaults()
        if defaults:
            AgencyMultiplier.objects.all().delete()
            audit_record(subaccount=None, actor=actor, action=AuditEntry.Action.AGENCY_MULTIPLIERS_CHANGED,
                         before=_multipliers_text(defaults), after={"why": rules.summary})
        overrides = MultiplierOverride.objects.select_related("subaccount").order_by("subaccount_id", "product")
        per_subaccount: dict[int, dict[str, Decimal]] = {}
        for override in overrides:
            per_subaccount.setdefault(override.subaccount_id, {})[override.product] = override.multiplier
            names[override.subaccount_id] = override.subaccount.name
        overrides.delete()
        for subaccount_id, before in per_subaccount.items():
            audit_record(subaccount=subaccount_id, actor=actor, action=AuditEntry.Action.PLAN_RULES_APPLIED,
                         before=_multipliers_text(before), after={"multipliers": rules.multiplier_note,
                                                                  "why": rules.summary})
            effects.setdefault(subaccount_id, []).append(f"multipliers are now {rules.multiplier_note}")
    stopped = SubAccountRebilling.objects.select_for_update().select_related("subaccount").filter(switched_on=True)
    if not rules.stops_all_rebilling:
        stopped = stopped.filter(subaccount__phone_provider__provider__in=sorted(rules.providers_stopped))
    for settings in stopped.order_by("pk"):
        _switch_off(settings, actor=actor, why=rules.summary)
        names[settings.subaccount_id] = settings.subaccount.name
        effects.setdefault(settings.subaccount_id, []).append("rebilling switched off")
    return [PlanChangeEffect(subaccount_id, names[subaccount_id], changes)
            for subaccount_id, changes in sorted(effects.items(), key=lambda item: names[item[0]].lower())]
