"""The fake's in-memory state: accounts, their usage (explicit or generated), faults; parents rolled up."""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from devservices.fake_twilio.categories import DAILY_WEIGHT, LEAVES, PARENTS, _category_meta

# --- State ---------------------------------------------------------------------------------------

@dataclass
class Leaf:
    count: Decimal
    usage: Decimal
    price: Decimal


@dataclass
class Fault:
    kind: str  # "status" | "sleep" | "malformed"
    remaining: int
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    field: str = "price"


@dataclass
class Account:
    sid: str
    auth_token: str
    parent_sid: str | None = None
    friendly_name: str = ""
    status: str = "active"
    demo: bool = False
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Explicit leaf values keyed by (day, category); they override any generated value.
    usage: dict[tuple[date, str], Leaf] = field(default_factory=dict)
    # Bulk generator: (first day, number of days, seed); values computed on demand, never stored.
    bulk: tuple[date, int, int] | None = None
    faults: deque[Fault] = field(default_factory=deque)
    malformed: deque[Fault] = field(default_factory=deque)
    overlaps: int = 0  # next pages that repeat the previous page's last record
    unlisted: set[tuple[date, str]] = field(default_factory=set)  # usage Twilio bills but does not list
    currency: str = "usd"  # what the account is billed in: usage records' price_unit, Balance's currency


class State:
    def __init__(self, *, demo: bool) -> None:
        self.demo = demo
        self.accounts: dict[str, Account] = {}
        self.requests: deque[dict[str, Any]] = deque(maxlen=200_000)

    def reset(self) -> None:
        self.accounts.clear()
        self.requests.clear()


def _hash(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def _generated_leaf(sid: str, category: str, day: date, seed: int, fraction: float = 1.0) -> Leaf:
    """Deterministic plausible usage for one leaf on one day (``fraction`` of the day elapsed)."""
    meta = LEAVES[category]
    h = _hash(sid, category, day.isoformat(), seed)
    if category.startswith("phonenumbers"):
        # Numbers are billed monthly, on one day of the month.
        if day.day != 1 + h % 28:
            return Leaf(Decimal(0), Decimal(0), Decimal(0))
        count = Decimal(1 + h % 3)
        return Leaf(count, count, count * meta.unit_price)
    weight = DAILY_WEIGHT[category]
    full = weight // 2 + h % (weight + 1)
    count = Decimal(int(full * fraction))
    usage = count
    if meta.usage_unit == "minutes":
        usage = count * (1 + (h >> 8) % 4)  # whole minutes, rounded up per call
    return Leaf(count, usage, (usage * meta.unit_price).quantize(Decimal("0.0001")))


def _leaves_for(state: State, acct: Account, start: date, end: date) -> dict[tuple[date, str], Leaf]:
    leaves: dict[tuple[date, str], Leaf] = {}
    if acct.bulk is not None:
        first, days, seed = acct.bulk
        day = max(first, start)
        last = min(first + timedelta(days=days - 1), end)
        while day <= last:
            for cat in LEAVES:
                leaves[(day, cat)] = _generated_leaf(acct.sid, cat, day, seed)
            day += timedelta(days=1)
    if acct.demo and state.demo:
        now = datetime.now(UTC)
        today = now.date()
        elapsed = (now - datetime(today.year, today.month, today.day, tzinfo=UTC)).total_seconds() / 86400
        for back in range(3):
            day = today - timedelta(days=back)
            if start <= day <= end:
                for cat in LEAVES:
                    leaves[(day, cat)] = _generated_leaf(acct.sid, cat, day, 0, elapsed if back == 0 else 1.0)
    for key, leaf in acct.usage.items():
        if start <= key[0] <= end:
            leaves[key] = leaf
    return leaves


def _with_parents(leaves: dict[tuple[date, str], Leaf]) -> dict[tuple[date, str], Leaf]:
    """Add Twilio's roll-up categories: each parent sums its leaves; totalprice sums every price."""
    out = dict(leaves)
    days = {day for day, _ in leaves}
    for day in days:
        for parent in PARENTS:
            out.setdefault((day, parent), Leaf(Decimal(0), Decimal(0), Decimal(0)))
    for (day, cat), leaf in leaves.items():
        for parent in _category_meta(cat).parents:
            # A new Leaf each time: a parent may be a category stored as a leaf (mms-inbound), never mutated.
            p = out.get((day, parent)) or Leaf(Decimal(0), Decimal(0), Decimal(0))
            out[(day, parent)] = Leaf(p.count + leaf.count, p.usage + leaf.usage, p.price + leaf.price)
        total = out[(day, "totalprice")]
        total.usage += leaf.price
        total.price += leaf.price
    return out

