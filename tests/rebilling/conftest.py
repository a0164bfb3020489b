"""Sub-accounts in every state the rebilling decision knows, built straight in the agency's schema."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from agencies.models import Agency
from billing.models import BillingProfile
from people.models import User
from phone.models import ProviderStatus, SubAccountProvider
from stripe_connect.models import ConnectedAccount
from subaccounts.models import Membership, SubAccount
from tests.factories import MembershipFactory, SubAccountFactory

ACCT_A = "acct_1RebillAlphaAAAAA"
ACCT_B = "acct_1RebillBravoBBBBB"
# (provider, status): none, LC Phone and Twilio, each working or with credentials Twilio rejects.
PROVIDERS = [
    (None, None),
    ("lc_phone", ProviderStatus.ACTIVE), ("lc_phone", ProviderStatus.CREDENTIALS_INVALID),
    ("twilio", ProviderStatus.ACTIVE), ("twilio", ProviderStatus.CREDENTIALS_INVALID),
]


@dataclass(frozen=True)
class Shape:
    provider: str | None
    status: str | None
    has_admin: bool
    has_card: bool

    @property
    def label(self) -> str:
        return f"{self.provider or 'none'}-{self.status or 'na'}-admin{int(self.has_admin)}-card{int(self.has_card)}"


ALL_SHAPES = [Shape(p, s, admin, card) for (p, s), admin, card in itertools.product(PROVIDERS, (True, False),
                                                                                      (True, False))]


def make_subaccount(shape: Shape, *, name: str, account_id: str = ACCT_A) -> SubAccount:
    """Inside the agency's schema: a sub-account of that shape (its card saved on `account_id`)."""
    subaccount = SubAccountFactory(name=name)
    if shape.provider == "lc_phone":
        SubAccountProvider.objects.create(subaccount=subaccount, provider="lc_phone",
                                          lc_phone_account_sid=f"AC{subaccount.pk:032d}", status=shape.status)
    elif shape.provider == "twilio":
        SubAccountProvider.objects.create(subaccount=subaccount, provider="twilio",
                                          twilio_account_sid=f"AC{subaccount.pk:032d}",
                                          twilio_auth_token_encrypted="not-used-here", twilio_auth_token_last4="abcd",
                                          status=shape.status)
    if shape.has_admin:
        MembershipFactory(subaccount=subaccount, role=Membership.Role.ACCOUNT_ADMIN)
    if shape.has_card:
        BillingProfile.objects.create(subaccount=subaccount, stripe_account_id=account_id,
                                      stripe_customer_id=f"cus_{subaccount.pk}",
                                      card_payment_method_id=f"pm_{subaccount.pk}", card_brand="visa",
                                      card_last4="4242", card_exp_month=12, card_exp_year=2030)
    return subaccount


def set_plan(agency: Agency, plan: str) -> Agency:
    """The agency on `plan` (rolled back with the test); returns a fresh row for tenant_context."""
    connection.set_schema_to_public()
    Agency.objects.filter(pk=agency.pk).update(plan=plan)
    return Agency.objects.get(pk=agency.pk)


def connect(agency: Agency, account_id: str) -> ConnectedAccount:
    connection.set_schema_to_public()
    return ConnectedAccount.objects.create(agency=agency, account_id=account_id)


@pytest.fixture
def ready(world, db):
    """A sub-account of agency A (Pro) that can be rebilled: LC Phone, account admin, card, Stripe connected."""
    connect(world.a.agency, ACCT_A)
    connect(world.b.agency, ACCT_B)
    with tenant_context(world.a.agency):
        subaccount = make_subaccount(Shape("lc_phone", ProviderStatus.ACTIVE, True, True), name="Ready client")
    connection.set_schema_to_public()
    return subaccount


def admin_of(world_agency) -> User:
    return world_agency.admin
