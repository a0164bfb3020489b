"""Reads for credit usage details. Every function takes an already-authorised wallet or works inside the
caller's agency schema; the client's rows never carry the agency's cost or multiplier (see `Line`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from agencies.plans import Product
from creditusage.models import (
    AgencyDayRollup,
    DetailsSharing,
    LedgerDayTotal,
    SpendAlert,
    UsageRollup,
)
from people.models import User
from subaccounts.models import Membership, SubAccount
from wallets.models import Wallet, WalletEntry

PAGE_SIZE = 50
ZERO = Decimal(0)
MICRO = Decimal("0.000001")
# Labels by value, built once: a model's get_FOO_display() rebuilds its choices' dict on every call (50 lines a page).
ENTRY_KIND_LABELS = dict(WalletEntry.Kind.choices)
PRODUCT_LABELS = dict(Product.choices)
CREDIT, DEBIT = "credit", "debit"
_MONEY: DecimalField = DecimalField(max_digits=18, decimal_places=6)


@dataclass(frozen=True)
class EntryFilter:
    start: date | None = None  # created on or after (UTC day)
    end: date | None = None  # created on or before (UTC day), inclusive
    direction: str = ""  # "", CREDIT or DEBIT
    product: str = ""  # "" or a Product value


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the last row shown, by (created_at, seq) descending."""

    created_at: datetime
    seq: int

    def encode(self) -> str:
        return f"{int(self.created_at.timestamp() * 1_000_000)}-{self.seq}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """ValueError on anything but `<microseconds>-<seq>`."""
        micros, _, seq = text.partition("-")
        if not (micros.isdigit() and seq.isdigit()):
            raise ValueError("bad cursor")
        return cls(created_at=datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC).replace(
            microsecond=int(micros) % 1_000_000), seq=int(seq))


def account_users_may_view_details() -> bool:
    return DetailsSharing.objects.filter(account_users_may_view=True).exists()


def details_membership(*, user: User, subaccount_id: int) -> Membership:
    """The caller's membership of that sub-account if it may read See details — an account admin, or an account
    user when the agency allows it — or 404 (agency staff and other sub-accounts' people included)."""
    roles = [Membership.Role.ACCOUNT_ADMIN]
    if account_users_may_view_details():
        roles.append(Membership.Role.ACCOUNT_USER)
    membership = (Membership.objects.select_related("subaccount")
                  .filter(user=user, user__role=User.Role.CLIENT, subaccount_id=subaccount_id, role__in=roles)
                  .first())
    if membership is None:
        raise Http404("No such sub-account")
    return membership


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def wallet_of(*, subaccount: SubAccount) -> Wallet | None:
    return Wallet.objects.filter(subaccount=subaccount).first()


def wallet_entries_filtered(*, wallet: Wallet | None, entry_filter: EntryFilter) -> QuerySet[WalletEntry]:
    """The wallet's entries the filter selects, newest first (created_at, then seq)."""
    if wallet is None:
        return WalletEntry.objects.none()
    entries = WalletEntry.objects.filter(wallet=wallet)
    if entry_filter.start is not None:
        entries = entries.filter(created_at__gte=day_start(entry_filter.start))
    if entry_filter.end is not None:
        entries = entries.filter(created_at__lt=day_start(entry_filter.end + timedelta(days=1)))
    if entry_filter.direction == CREDIT:
        entries = entries.filter(amount__gt=0)
    elif entry_filter.direction == DEBIT:
        entries = entries.filter(amount__lt=0)
    if entry_filter.product:
        entries = entries.filter(product=entry_filter.product)
    return entries.order_by("-created_at", "-seq")


@dataclass(frozen=True)
class Page:
    entries: list[WalletEntry]
    next_cursor: Cursor | None


def wallet_entries_page(*, entries: QuerySet[WalletEntry], after: Cursor | None,
                        size: int = PAGE_SIZE) -> Page:
    """One page by keyset (never OFFSET): as fast on page 10,000 as on page 1."""
    if after is not None:
        # (created_at, seq) < (T, S), written so that `created_at <= T` bounds the index scan on its own.
        entries = entries.filter(Q(created_at__lte=after.created_at),
                                 Q(created_at__lt=after.created_at) | Q(seq__lt=after.seq))
    rows = list(entries.select_related("charge")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return Page(entries=rows, next_cursor=Cursor(rows[-1].created_at, rows[-1].seq) if more and rows else None)


@dataclass(frozen=True)
class Totals:
    count: int
    credits: Decimal
    debits: Decimal
    cost: Decimal  # agency's cost of the usage lines (agency pages only)
    usage_net_revenue: Decimal  # Σ client amounts of usage lines (debits less corrections)

    @property
    def net(self) -> Decimal:
        return self.credits + self.debits

    @property
    def profit(self) -> Decimal:
        return self.usage_net_revenue - self.cost


def entry_totals(*, wallet: Wallet | None, entry_filter: EntryFilter) -> Totals:
    """The filter's totals from the per-day ledger totals (a year is ~3,650 rows, whatever the ledger's size);
    the filter's days, sign and product are exactly the rollup's keys, so they equal Σ of the filtered rows."""
    if wallet is None:
        return Totals(count=0, credits=ZERO, debits=ZERO, cost=ZERO, usage_net_revenue=ZERO)
    rows = LedgerDayTotal.objects.filter(wallet=wallet)
    if entry_filter.start is not None:
        rows = rows.filter(day__gte=entry_filter.start)
    if entry_filter.end is not None:
        rows = rows.filter(day__lte=entry_filter.end)
    if entry_filter.direction == CREDIT:
        rows = rows.filter(sign=1)
    elif entry_filter.direction == DEBIT:
        rows = rows.filter(sign=-1)
    if entry_filter.product:
        rows = rows.filter(product=entry_filter.product)
    sums = rows.order_by().aggregate(
        count=Coalesce(Sum("entries"), Value(0)),
        credits=Coalesce(Sum("amount", filter=Q(sign=1)), Value(ZERO), output_field=_MONEY),
        debits=Coalesce(Sum("amount", filter=Q(sign=-1)), Value(ZERO), output_field=_MONEY),
        cost=Coalesce(Sum("usage_cost"), Value(ZERO), output_field=_MONEY),
        usage_net=Coalesce(Sum("usage_amount"), Value(ZERO), output_field=_MONEY),
    )
    return Totals(count=sums["count"], credits=sums["credits"], debits=sums["debits"], cost=sums["cost"],
                  usage_net_revenue=sums["usage_net"])


# --- what one line says -------------------------------------------------------------------------------------

def usage_description(*, usage_delta_id: int | None, category: str, day: date | None, note: str,
                      kind_label: str) -> str:
    if usage_delta_id is not None:
        return f"{category} usage on {day:%Y-%m-%d}" if day else category
    return note or kind_label


def entry_description(entry: WalletEntry) -> str:
    return usage_description(usage_delta_id=entry.usage_delta_id, category=entry.category, day=entry.day,
                             note=entry.note, kind_label=ENTRY_KIND_LABELS.get(entry.kind, entry.kind))


def charge_reference(*, charge_id: int | None, payment_intent_id: str | None, usage_delta_id: int | None,
                     seq: int) -> str:
    if charge_id is not None:
        return payment_intent_id or f"charge {charge_id}"
    if usage_delta_id is not None:
        return f"usage {usage_delta_id}"
    return f"entry {seq}"


def entry_reference(entry: WalletEntry) -> str:
    return charge_reference(charge_id=entry.charge_id,
                            payment_intent_id=entry.charge.payment_intent_id if entry.charge else "",
                            usage_delta_id=entry.usage_delta_id, seq=entry.seq)


def client_unit_price(*, usage_delta_id: int | None, units: Decimal | None, amount: Decimal) -> Decimal | None:
    if usage_delta_id is None or not units:
        return None
    return (-amount / units).quantize(MICRO)


def entry_client_unit_price(entry: WalletEntry) -> Decimal | None:
    return client_unit_price(usage_delta_id=entry.usage_delta_id, units=entry.units_delta, amount=entry.amount)


def usage_profit(*, usage_delta_id: int | None, cost: Decimal | None, amount: Decimal) -> Decimal | None:
    if usage_delta_id is None or cost is None:
        return None
    return -amount - cost


def entry_profit(entry: WalletEntry) -> Decimal | None:
    return usage_profit(usage_delta_id=entry.usage_delta_id, cost=entry.cost_delta, amount=entry.amount)


@dataclass(frozen=True)
class Line:
    """One transaction as a client may see it (no cost, no multiplier)."""

    created_at: datetime
    kind: str
    product: str
    description: str
    units: Decimal | None
    unit_price: Decimal | None
    amount: Decimal
    balance_after: Decimal
    reference: str


@dataclass(frozen=True)
class AgencyLine(Line):
    cost: Decimal | None
    multiplier: Decimal | None
    profit: Decimal | None


def client_line(entry: WalletEntry) -> Line:
    return Line(created_at=entry.created_at, kind=ENTRY_KIND_LABELS.get(entry.kind, entry.kind),
                product=PRODUCT_LABELS.get(entry.product, entry.product) if entry.product else "",
                description=entry_description(entry), units=entry.units_delta,
                unit_price=entry_client_unit_price(entry), amount=entry.amount, balance_after=entry.balance_after,
                reference=entry_reference(entry))


def agency_line(entry: WalletEntry) -> AgencyLine:
    base = client_line(entry)
    return AgencyLine(**base.__dict__, cost=entry.cost_delta, multiplier=entry.multiplier,
                      profit=entry_profit(entry))


# --- daily chart (from the rollups: no ledger scan) ---------------------------------------------------------

def daily_usage_by_product(*, subaccount_ids: list[int] | None, start: date, end: date,
                           product: str = "") -> dict[date, dict[str, Decimal]]:
    """Σ rebilled usage (client amounts) per usage day and product; `None` means every sub-account (read from
    the agency-wide rollup, so 10,000 sub-accounts cost the same as one)."""
    rollups: QuerySet[Any]
    if subaccount_ids is None:
        rollups = AgencyDayRollup.objects.filter(day__gte=start, day__lte=end)
    else:
        rollups = UsageRollup.objects.filter(day__gte=start, day__lte=end, subaccount_id__in=subaccount_ids)
    if product:
        rollups = rollups.filter(product=product)
    days: dict[date, dict[str, Decimal]] = {}
    for row in rollups.values("day", "product").annotate(revenue=Sum("revenue")).order_by("day", "product"):
        days.setdefault(row["day"], {})[row["product"]] = row["revenue"]
    return days


# --- periods ----------------------------------------------------------------------------------------------

def month_bounds(month: date) -> tuple[date, date]:
    start = month.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following - timedelta(days=1)


# --- the reconciliation export --------------------------------------------------------------------------------

def reconciliation_entries(*, start: date, end: date) -> QuerySet[WalletEntry]:
    """Every wallet entry of this agency created in [start, end] (UTC days), in ledger order."""
    return (WalletEntry.objects.filter(created_at__gte=day_start(start),
                                       created_at__lt=day_start(end + timedelta(days=1)))
            .order_by("wallet_id", "seq"))


def spend_alerts_recent(*, days: int = 7, today: date) -> QuerySet[SpendAlert]:
    return SpendAlert.objects.filter(day__gte=today - timedelta(days=days)).order_by("-day", "-pk")


def spend_alerts_paused(*, subaccount_id: int) -> QuerySet[SpendAlert]:
    """The alerts whose pause of this sub-account nobody has lifted yet."""
    return SpendAlert.objects.filter(subaccount_id=subaccount_id, paused=True, resumed_at__isnull=True).order_by(
        "-day")
