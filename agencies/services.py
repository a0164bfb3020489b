"""Creating agencies (tenants) and the platform tenant."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django_tenants.utils import get_public_schema_name, tenant_context

from agencies.models import Agency, Domain, PlanChange
from agencies.plans import BillingPeriod, Plan, PlanChangeRules, plan_change_rules, plan_terms
from people.models import User
from people.services import invitation_send, invitation_token_make, user_create
from rebill.mail import email_send
from rebill.text import validate_name
from rebilling.services import PlanChangeEffect, plan_rules_apply

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
RESERVED_SLUGS = frozenset({"www", "public", "admin", "api", "platform", "static", "mail", "app", "stripe"})
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME_PATTERN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")


def domain_error(domain: str) -> str | None:
    if not HOSTNAME_PATTERN.match(domain):
        return f"{domain!r} is not a valid domain name (e.g. crm.example.com)."
    if Domain.objects.filter(domain=domain).exists():
        return f"The domain {domain} is already in use."
    return None


def schema_is_reserved(schema: str) -> bool:
    """PostgreSQL's own schemas (`pg_*`, `information_schema`), the platform's, and any schema already there."""
    if schema.startswith("pg_") or schema in ("information_schema", get_public_schema_name()):
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
        return cursor.fetchone() is not None


def _validate_new_agency(*, name: str, slug: str, plan: str, billing_period: str, custom_domain: str | None) -> None:
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "Enter the agency's name."
    else:
        try:
            validate_name(name)
        except ValidationError as refused:
            errors["name"] = refused.messages[0]
    if not SLUG_PATTERN.match(slug):
        errors["slug"] = "Use 3-40 lowercase letters, digits and hyphens, starting with a letter."
    elif slug in RESERVED_SLUGS:
        errors["slug"] = f"{slug!r} is reserved."
    elif Agency.objects.filter(slug=slug).exists() or Agency.objects.filter(schema_name=slug_to_schema(slug)).exists():
        errors["slug"] = f"The slug {slug!r} is already taken."
    elif schema_is_reserved(slug_to_schema(slug)):
        errors["slug"] = f"{slug!r} is reserved: its database schema {slug_to_schema(slug)!r} is taken."
    elif error := domain_error(agency_subdomain(slug)):
        errors["slug"] = error
    if plan not in Plan.values:
        errors["plan"] = f"Unknown plan {plan!r}; choose one of: {', '.join(Plan.values)}."
    if billing_period not in BillingPeriod.values:
        errors["billing_period"] = f"Unknown billing period {billing_period!r}; choose monthly or annual."
    if custom_domain and (error := domain_error(custom_domain)):
        errors["custom_domain"] = error
    if errors:
        raise ValidationError(errors)


def agency_url(*, agency: Agency, path: str) -> str:
    """An absolute URL on the agency's primary domain, for emails sent outside a request on that domain."""
    domain = agency.domains.filter(is_primary=True).values_list("domain", flat=True).get()
    port = f":{settings.REBILL_SITE_PORT}" if settings.REBILL_SITE_PORT else ""
    return f"{settings.REBILL_SITE_SCHEME}://{domain}{port}{path}"


def slug_to_schema(slug: str) -> str:
    return slug.replace("-", "_")


def agency_subdomain(slug: str) -> str:
    return f"{slug}.{settings.REBILL_BASE_DOMAIN}"


def agency_create(
    *,
    name: str,
    slug: str,
    plan: str,
    admin_email: str,
    admin_password: str | None,
    admin_full_name: str = "",
    billing_period: str = BillingPeriod.MONTHLY,
    custom_domain: str | None = None,
    invite: bool = True,
) -> Agency:
    """Create the agency's schema, its domains and its first agency admin — all or nothing — then, without a
    password, email that admin an invitation (a failed email is logged; `invite=False` leaves sending it, and
    showing whether it went out, to the caller: `agency_admin_invitation_send`)."""
    with transaction.atomic():
        agency = _agency_create(
            name=name, slug=slug, plan=plan, admin_email=admin_email, admin_password=admin_password,
            admin_full_name=admin_full_name, billing_period=billing_period, custom_domain=custom_domain,
        )
    if invite and not admin_password:
        agency_admin_invitation_send(agency=agency)
    return agency


def agency_admin_invitation_send(*, agency: Agency) -> str | None:
    """Invite the agency's admins who have not set a password yet; None when every email went out."""
    errors = []
    with tenant_context(agency):
        for admin in User.objects.filter(role=User.Role.AGENCY_ADMIN, is_active=True):
            if admin.has_usable_password():
                continue
            invitation_path = reverse("people:invitation", args=[invitation_token_make(user=admin)])
            error = invitation_send(user=admin, accept_url=agency_url(agency=agency, path=invitation_path),
                                    inviter=None, place=agency.name)
            if error:
                errors.append(f"{error} ({admin.email})")
    return " ".join(errors) or None


def _agency_create(
    *,
    name: str,
    slug: str,
    plan: str,
    admin_email: str,
    admin_password: str | None,
    admin_full_name: str,
    billing_period: str,
    custom_domain: str | None,
) -> Agency:
    slug = slug.strip().lower()
    custom_domain = (custom_domain or "").strip().lower() or None
    _validate_new_agency(
        name=name, slug=slug, plan=plan, billing_period=billing_period, custom_domain=custom_domain
    )
    agency = Agency(
        name=name.strip(), slug=slug, schema_name=slug_to_schema(slug), plan=plan, billing_period=billing_period
    )
    agency.save(verbosity=0)
    Domain.objects.create(tenant=agency, domain=agency_subdomain(slug), is_primary=True)
    if custom_domain:
        Domain.objects.create(tenant=agency, domain=custom_domain, is_primary=False)
    with tenant_context(agency):
        try:
            user_create(
                email=admin_email,
                full_name=admin_full_name,
                password=admin_password,
                role=User.Role.AGENCY_ADMIN,
            )
        except ValidationError as error:
            if hasattr(error, "error_dict") and "full_name" in error.error_dict:
                raise ValidationError({"admin_full_name": error.message_dict["full_name"]}) from None
            raise ValidationError({"admin_email": error.messages}) from None
    return agency


@transaction.atomic
def platform_tenant_ensure() -> Agency:
    """The public schema's tenant row and the platform's domain (REBILL_BASE_DOMAIN)."""
    platform, _ = Agency.objects.get_or_create(
        schema_name=get_public_schema_name(), defaults={"name": "Rebill platform", "slug": "platform"}
    )
    Domain.objects.get_or_create(domain=settings.REBILL_BASE_DOMAIN, defaults={"tenant": platform, "is_primary": True})
    return platform


@transaction.atomic
def agency_plan_change(*, agency: Agency, plan: str, by: str) -> list[PlanChangeEffect]:
    """Change the agency's plan and re-apply its rules at once, in one transaction; agency admins are emailed
    what changed for each sub-account. The one way a plan changes (the platform admin goes through it too)."""
    if plan not in Plan.values:
        raise ValidationError({"plan": f"Unknown plan {plan!r}; choose one of: {', '.join(Plan.values)}."})
    agency = Agency.objects.select_for_update().get(pk=agency.pk)
    if agency.plan == plan:
        return []
    rules = plan_change_rules(old_plan=agency.plan, new_plan=plan)
    PlanChange.objects.create(agency=agency, old_plan=agency.plan, new_plan=plan, changed_by=by)
    agency.plan = plan
    agency.save(update_fields=["plan"])
    with tenant_context(agency):
        effects = plan_rules_apply(rules=rules, actor=by)
        admins = list(User.objects.filter(role=User.Role.AGENCY_ADMIN, is_active=True).values_list("email", flat=True))
    message = plan_change_message(agency=agency, rules=rules, effects=effects)
    transaction.on_commit(lambda: email_send(subject=f"Your plan is now {rules.new_plan.label}", body=message,
                                             to=admins))
    return effects


def plan_change_message(*, agency: Agency, rules: PlanChangeRules, effects: list[PlanChangeEffect]) -> str:
    lines = [f"The plan of {agency.name} changed from {rules.old_plan.label} to {rules.new_plan.label}.", ""]
    if effects:
        lines.append("What changed for your sub-accounts:")
        lines.extend(f"- {effect.name}: {', '.join(effect.changes)}" for effect in effects)
    else:
        lines.append("Nothing changed for your sub-accounts.")
    if plan_terms(rules.new_plan).rebillable_providers - plan_terms(rules.old_plan).rebillable_providers:
        lines += ["", "Phone rebilling stays off until you switch it on in Manage Client."]
    return "\n".join(lines) + "\n"
