"""Reads for Settings → Billing → See details: the agency's own wallet with the platform (agency_wallets, public
schema) — what the platform billed for its sub-accounts' LC Phone usage and what the agency paid. Scoped to the
agency of the current schema: no function takes an agency or wallet id from the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from agency_wallets.models import AgencyWallet, AgencyWalletEntry
from creditusage.selectors import PAGE_SIZE, day_start, usage_description
from stripe_connect.selectors import current_agency

ZERO = Decimal(0)
AGENCY_WALLET_KIND_LABELS = dict(AgencyWalletEntry.Kind.choices)  # see ENTRY_KIND_LABELS
_MONEY: DecimalField = DecimalField(max_digits=18, decimal_places=6)


@dataclass(frozen=True)
class AgencyWalletFilter:
    start: date | None = None  # created on or after (UTC day)
    end: date | None = None  # created on or before (UTC day), inclusive
    kind: str = ""  # "" or an AgencyWalletEntry.Kind


def agency_wallet_of_current_agency() -> AgencyWallet | None:
    return AgencyWallet.objects.filter(agency=current_agency()).first()


def agency_wallet_entries(*, wallet_filter: AgencyWalletFilter) -> QuerySet[AgencyWalletEntry]:
    """The current agency's platform-wallet entries the filter selects, newest first (by seq: one wallet's
    entries are appended in seq order under its lock)."""
    wallet = agency_wallet_of_current_agency()
    if wallet is None:
        return AgencyWalletEntry.objects.none()
    entries = AgencyWalletEntry.objects.filter(wallet=wallet)
    if wallet_filter.start is not None:
        entries = entries.filter(created_at__gte=day_start(wallet_filter.start))
    if wallet_filter.end is not None:
        entries = entries.filter(created_at__lt=day_start(wallet_filter.end + timedelta(days=1)))
    if wallet_filter.kind:
        entries = entries.filter(kind=wallet_filter.kind)
    return entries.order_by("-seq")


@dataclass(frozen=True)
class AgencyWalletTotals:
    count: int
    credits: Decimal
    debits: Decimal

    @property
    def net(self) -> Decimal:
        return self.credits + self.debits


def agency_wallet_totals(*, entries: QuerySet[AgencyWalletEntry]) -> AgencyWalletTotals:
    """The totals of exactly the rows the filter selects (read off the (wallet, created_at) index with the amount
    and kind it carries)."""
    sums = entries.order_by().aggregate(
        count=Count("*"),
        credits=Coalesce(Sum("amount", filter=Q(amount__gt=0)), Value(ZERO), output_field=_MONEY),
        debits=Coalesce(Sum("amount", filter=Q(amount__lt=0)), Value(ZERO), output_field=_MONEY),
    )
    return AgencyWalletTotals(count=sums["count"], credits=sums["credits"], debits=sums["debits"])


@dataclass(frozen=True)
class AgencyWalletPage:
    entries: list[AgencyWalletEntry]
    next_after: int | None  # the seq to continue below


def agency_wallet_page(*, entries: QuerySet[AgencyWalletEntry], after: int | None,
                       size: int = PAGE_SIZE) -> AgencyWalletPage:
    """One page by keyset on (wallet, seq), never OFFSET."""
    if after is not None:
        entries = entries.filter(seq__lt=after)
    rows = list(entries[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return AgencyWalletPage(entries=rows, next_after=rows[-1].seq if more and rows else None)


def agency_wallet_reference(*, usage_delta_id: int | None, seq: int) -> str:
    return f"usage {usage_delta_id}" if usage_delta_id is not None else f"entry {seq}"


def agency_wallet_entry_description(entry: AgencyWalletEntry) -> str:
    return usage_description(usage_delta_id=entry.usage_delta_id, category=entry.category, day=entry.day,
                             note=entry.note, kind_label=AGENCY_WALLET_KIND_LABELS.get(entry.kind, entry.kind))


def agency_wallet_entry_reference(entry: AgencyWalletEntry) -> str:
    return agency_wallet_reference(usage_delta_id=entry.usage_delta_id, seq=entry.seq)
