"""The demo data `make run` starts with: platform staff, a Freelancer and a Pro agency with clients."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django_tenants.utils import tenant_context

from agencies.models import Agency
from agencies.plans import Plan
from agencies.services import agency_create, platform_tenant_ensure
from devservices.demo.phone import demo_phone_providers
from people.models import User
from people.services import user_create
from subaccounts.models import Membership, SubAccount
from subaccounts.services import membership_add, subaccount_create


@dataclass(frozen=True)
class DemoAgency:
    name: str
    slug: str
    plan: Plan
    subaccounts: tuple[str, ...]


DEMO_AGENCIES = (
    DemoAgency("Sunrise Marketing", "sunrise", Plan.FREELANCER, ("Bloom Dental", "Harbor Realty")),
    DemoAgency("Northwind Digital", "northwind", Plan.PRO, ("Peak Fitness", "Cedar Law")),
)


def _demo_stripe_connect(agency: Agency) -> None:
    """On localstripe the demo agencies start connected, ready to try; agencies created later connect through
    the local Stripe's authorize page (Settings → Stripe → Connect with Stripe)."""
    from django.conf import settings

    if not settings.STRIPE_API_BASE.startswith(("http://127.0.0.1:", "http://localhost:")):
        return  # real Stripe: agencies connect on Settings → Stripe
    from devservices.localstripe_server import register_account
    from stripe_connect.services import stripe_account_record

    account_id = f"acct_1Demo{agency.slug.replace('-', '')}"
    register_account(settings.STRIPE_API_BASE, account_id=account_id, name=agency.name,
                     email=f"admin@{agency.slug}.test")
    stripe_account_record(agency=agency, account_id=account_id, display_name=agency.name)


def _email_slug(name: str) -> str:
    return name.lower().replace(" ", "")


@transaction.atomic
def demo_seed(*, password: str) -> list[tuple[str, str, str]]:
    """Create whatever of the demo is missing; returns (where, email, role) for every demo login."""
    platform_tenant_ensure()
    logins: list[tuple[str, str, str]] = []
    staff_email = "staff@rebill.localhost"
    if not User.objects.filter(email=staff_email).exists():
        User.objects.create_superuser(staff_email, password, full_name="Platform staff")
    logins.append(("platform admin", staff_email, "platform staff"))

    for demo in DEMO_AGENCIES:
        agency = Agency.objects.filter(slug=demo.slug).first()
        admin_email = f"admin@{demo.slug}.test"
        if agency is None:
            agency = agency_create(
                name=demo.name, slug=demo.slug, plan=demo.plan, admin_email=admin_email,
                admin_full_name=f"{demo.name} admin", admin_password=password,
            )
        where = f"{demo.slug}.<host>"
        logins.append((where, admin_email, "agency admin"))
        _demo_stripe_connect(agency)
        with tenant_context(agency):
            admin = User.objects.get(email=admin_email)
            staff_email = f"staff@{demo.slug}.test"
            if not User.objects.filter(email=staff_email).exists():
                user_create(email=staff_email, full_name="Agency user", password=password, role=User.Role.AGENCY_USER)
            logins.append((where, staff_email, "agency user"))
            for client_name in demo.subaccounts:
                subaccount = SubAccount.objects.filter(name=client_name).first() or subaccount_create(
                    name=client_name, contact_email=f"office@{_email_slug(client_name)}.test", by=admin
                )
                people = ((Membership.Role.ACCOUNT_ADMIN, "owner"), (Membership.Role.ACCOUNT_USER, "team"))
                for role, local_part in people:
                    email = f"{local_part}@{_email_slug(client_name)}.test"
                    if not Membership.objects.filter(subaccount=subaccount, user__email=email).exists():
                        # The demo's clients get a known password at once (a real client sets theirs from the
                        # invitation); membership_add then links the existing client.
                        if not User.objects.filter(email=email).exists():
                            user_create(email=email, full_name=f"{client_name} {local_part}", password=password,
                                        role=User.Role.CLIENT)
                        membership_add(subaccount=subaccount, email=email, full_name=f"{client_name} {local_part}",
                                       role=role, by=admin)
                    logins.append((where, email, f"{Membership.Role(role).label} of {client_name}"))
            demo_phone_providers(slug=demo.slug, subaccounts=list(SubAccount.objects.filter(name__in=demo.subaccounts)
                                                                  .order_by("pk")), by=admin)
    return logins
