"""Reads of the phone app, scoped to what the caller may see."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django import forms
from django.db import connection
from django.db.models import QuerySet, Sum
from django.utils import timezone

from agencies.plans import PhoneProvider, Product, rebilling_refusal
from people.models import User
from phone.forms import TwilioCredentialsForm
from phone.models import ProviderStatus, RetiredAccount, SubAccountProvider, UsageLine
from phone.services.usage import usage_window
from subaccounts.models import Membership, SubAccount
from subaccounts.selectors import one_to_one_row


def providers_to_pull() -> QuerySet[SubAccountProvider]:
    """Every provider of this agency whose usage can be read (not while its credentials are known bad)."""
    return SubAccountProvider.objects.exclude(status=ProviderStatus.CREDENTIALS_INVALID).order_by("pk")


def retired_accounts_to_pull(*, now: datetime) -> QuerySet[RetiredAccount]:
    """Accounts sub-accounts stopped using less than 35 days ago: still re-read daily for late corrections."""
    return RetiredAccount.objects.filter(pull_until__gt=now).order_by("pk")


def usage_lines_for_subaccount(*, subaccount: SubAccount, start: date, end: date) -> QuerySet[UsageLine]:
    return UsageLine.objects.filter(subaccount=subaccount, day__gte=start, day__lte=end).order_by("day", "category")


@dataclass(frozen=True)
class ProductUsage:
    product: str
    units: Decimal
    cost: Decimal

    @property
    def label(self) -> str:
        return str(Product(self.product).label)


@dataclass(frozen=True)
class ProviderSection:
    """What Manage Client shows about a sub-account's phone provider."""

    subaccount: SubAccount
    provider: SubAccountProvider | None
    window_start: date
    window_end: date
    twilio_form: forms.Form
    usage: list[ProductUsage] = field(default_factory=list)
    rebilling_note: str | None = None

    @property
    def is_twilio(self) -> bool:
        return self.provider is not None and self.provider.provider == PhoneProvider.TWILIO

    @property
    def credentials_invalid(self) -> bool:
        return self.provider is not None and self.provider.status == ProviderStatus.CREDENTIALS_INVALID

    @property
    def usage_total(self) -> Decimal:
        return sum((row.cost for row in self.usage), Decimal(0))


def provider_section(
    *, user: User, subaccount: SubAccount, twilio_form: forms.Form | None = None
) -> ProviderSection | None:
    """The provider section of Manage Client, for agency admins only (None for anyone else)."""
    if not user.is_agency_admin:
        return None
    provider: SubAccountProvider | None = one_to_one_row(subaccount=subaccount, related_name="phone_provider")
    start, end = usage_window(now=timezone.now())
    usage: list[ProductUsage] = []
    if provider is not None:
        usage = _usage_by_product(subaccount=subaccount, account_sid=provider.account_sid, start=start, end=end)
    agency = connection.tenant  # type: ignore[attr-defined]  # set by django-tenants
    note = rebilling_refusal(plan=agency.plan, provider=provider.provider if provider else None)
    if twilio_form is None:
        twilio_form = TwilioCredentialsForm(initial={"account_sid": provider.twilio_account_sid if provider else ""})
    return ProviderSection(subaccount=subaccount, provider=provider, window_start=start, window_end=end,
                           twilio_form=twilio_form, usage=usage, rebilling_note=note)


@dataclass(frozen=True)
class MemberUsage:
    """What the client's own people see of their phone usage: provider and units, never the agency's cost."""

    subaccount: SubAccount
    provider: SubAccountProvider | None
    window_start: date
    window_end: date
    usage: list[ProductUsage] = field(default_factory=list)


def _usage_by_product(*, subaccount: SubAccount, account_sid: str, start: date, end: date) -> list[ProductUsage]:
    rows = (
        UsageLine.objects.filter(subaccount=subaccount, account_sid=account_sid, day__gte=start, day__lte=end)
        .values("product").annotate(units=Sum("units"), cost=Sum("cost")).order_by("product")
    )
    return [ProductUsage(product=row["product"], units=row["units"], cost=row["cost"]) for row in rows]


def usage_for_member(*, membership: Membership) -> MemberUsage:
    """The sub-account dashboard's usage, for a member of that sub-account (the membership proves it)."""
    subaccount = membership.subaccount
    provider = SubAccountProvider.objects.filter(subaccount=subaccount).first()
    start, end = usage_window(now=timezone.now())
    usage = (_usage_by_product(subaccount=subaccount, account_sid=provider.account_sid, start=start, end=end)
             if provider is not None else [])
    return MemberUsage(subaccount=subaccount, provider=provider, window_start=start, window_end=end, usage=usage)
