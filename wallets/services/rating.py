"""Rating (DESIGN §4, §5): every usage delta of a rebilled sub-account fetched at or after rebilling was switched
on becomes exactly one wallet entry: cost delta × the multiplier in force for its product now, rounded half-up to
6 places once (a negative delta is a credit).

Done in one INSERT … SELECT per wallet with the wallet row locked: two runs at once queue on the lock and the
second finds nothing left; the unique usage_delta column would refuse a second entry anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F

from creditusage.services import entry_rollups_add
from phone.models import UsageDelta, UsageLine
from rebilling.models import SubAccountRebilling
from rebilling.selectors import multipliers_for, rebilling_decision_for
from wallets.locks import wallet_lock
from wallets.models import Wallet, WalletEntry
from wallets.services.ledger import wallet_ensure


@dataclass(frozen=True)
class RatingResult:
    wallet_id: int | None
    entries: int
    total: Decimal


NOTHING = RatingResult(wallet_id=None, entries=0, total=Decimal(0))

# PostgreSQL's round(numeric, 6) rounds half away from zero, as agencies.plans.rebilled_amount (ROUND_HALF_UP)
# does: tests/wallets/test_rating_property.py holds the two to the same answers.
_RATE_SQL = f"""
WITH new AS (
    SELECT d.id AS delta_id, d.units_delta, d.cost_delta, l.product, l.category, l.day, l.account_sid,
           m.multiplier, round(d.cost_delta * m.multiplier, 6) AS client_amount,
           row_number() OVER (ORDER BY d.id) AS n
    FROM {UsageDelta._meta.db_table} d
    JOIN {UsageLine._meta.db_table} l ON l.id = d.line_id
    JOIN unnest(%(products)s::text[], %(multipliers)s::numeric[]) AS m(product, multiplier)
      ON m.product = l.product
    WHERE l.subaccount_id = %(subaccount_id)s AND d.fetched_at >= %(since)s AND d.currency = %(currency)s
      AND NOT EXISTS (SELECT 1 FROM {WalletEntry._meta.db_table} e WHERE e.usage_delta_id = d.id)
)
INSERT INTO {WalletEntry._meta.db_table}
    (wallet_id, seq, kind, amount, balance_after, usage_delta_id, product, category, day, units_delta,
     cost_delta, multiplier, provider_account, note, created_by, created_at)
SELECT %(wallet_id)s, %(last_seq)s + n,
       CASE WHEN client_amount < 0 THEN %(credit)s ELSE %(debit)s END,
       -client_amount, %(balance)s - sum(client_amount) OVER (ORDER BY n),
       delta_id, product, category, day, units_delta, cost_delta, multiplier, account_sid, '', 'rating', now()
FROM new ORDER BY n
RETURNING amount
"""  # noqa: S608 — only our own table names are formatted in


def wallet_rate(*, subaccount_id: int) -> RatingResult:
    """Rate what is new for one sub-account. Safe to run twice and concurrently."""
    rebilling = SubAccountRebilling.objects.filter(subaccount_id=subaccount_id, switched_on=True,
                                                   switched_on_at__isnull=False).select_related("subaccount").first()
    if rebilling is None or rebilling.switched_on_at is None:
        return NOTHING
    # Switched on but paused (plan, provider, card...): nothing is rebilled until it holds again.
    if not rebilling_decision_for(subaccount=rebilling.subaccount).is_enabled:
        return NOTHING
    multipliers = multipliers_for(subaccount=rebilling.subaccount)
    wallet = wallet_ensure(subaccount=subaccount_id)
    with transaction.atomic():
        wallet = wallet_lock(wallet_id=wallet.pk)
        last_seq = WalletEntry.objects.filter(wallet=wallet).order_by("-seq").values_list("seq", flat=True).first()
        with connection.cursor() as cursor:
            cursor.execute(_RATE_SQL, {
                "products": [str(p) for p in multipliers], "multipliers": list(multipliers.values()),
                "subaccount_id": subaccount_id, "since": rebilling.switched_on_at, "currency": wallet.currency,
                "wallet_id": wallet.pk, "last_seq": last_seq or 0, "balance": wallet.balance,
                "credit": WalletEntry.Kind.USAGE_CREDIT, "debit": WalletEntry.Kind.USAGE_DEBIT,
            })
            amounts = [row[0] for row in cursor.fetchall()]
        total = sum(amounts, Decimal(0))
        if amounts:
            Wallet.objects.filter(pk=wallet.pk).update(balance=F("balance") + total)
            entry_rollups_add(wallet_id=wallet.pk, after_seq=last_seq or 0)
    return RatingResult(wallet_id=wallet.pk, entries=len(amounts), total=total)


def subaccounts_to_rate() -> list[int]:
    """Switched-on sub-accounts with a delta not yet rated (for the beat's own run)."""
    since_rebilled = SubAccountRebilling.objects.filter(switched_on=True, switched_on_at__isnull=False)
    pending = UsageDelta.objects.filter(
        line__subaccount__rebilling__in=since_rebilled,
        fetched_at__gte=F("line__subaccount__rebilling__switched_on_at"),
        wallet_entry__isnull=True,
    )
    return sorted(set(pending.values_list("line__subaccount_id", flat=True)))
