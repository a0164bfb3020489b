"""Reads for Settings → Billing → See details: the agency's own wallet with the platform (agency_wallets, public
schema) — what the platform billed for its sub-accounts' LC Phone usage and what the agency paid. Scoped to the
agency of the current schema: no function takes an agency or wallet id from the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import QuerySet

from agency_wallets.models import AgencyWallet, AgencyWalletEntry
from creditusage.selectors import PAGE_SIZE, day_start
from stripe_connect.selectors import current_agency


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


def agency_wallet_entry_description(entry: AgencyWalletEntry) -> str:
    if entry.usage_delta_id is not None:
        return f"{entry.category} usage on {entry.day:%Y-%m-%d}" if entry.day else entry.category
    return entry.note or entry.get_kind_display()


def agency_wallet_entry_reference(entry: AgencyWalletEntry) -> str:
    return f"usage {entry.usage_delta_id}" if entry.usage_delta_id is not None else f"entry {entry.seq}"
