"""Rating (DESIGN §4, §5): every usage delta of a rebilled sub-account fetched at or after rebilling was switched
on becomes exactly one wallet entry: cost delta × the multiplier in force for its product now, rounded half-up to
6 places once (a negative delta is a credit).

Set-based: a batch of wallets is locked in primary-key order, then one INSERT … SELECT writes every new entry of
the batch (seq and balance_after by window functions per wallet) and one UPDATE moves their balances. Two runs at
once queue on the wallet locks and the second finds nothing left; the unique usage_delta column would refuse a
second entry anyway. Rating one sub-account at a time cost ~20 statements, a wallet lock and two commits each
(~60 ms on the shared machine, while its INSERT took ~3 ms): the batch pays those once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F

from creditusage.services import entries_rollups_add
from phone.models import UsageDelta, UsageLine
from rebilling.models import SubAccountRebilling
from wallets.locks import wallets_lock
from wallets.models import Wallet, WalletEntry
from wallets.selectors import RateableSubAccount, subaccounts_rateable

# Wallets locked and rated per transaction: bounds how long one batch holds wallet locks (a recharge decision
# for one of them waits that long) and the size of one statement.
RATING_BATCH = 1000


@dataclass(frozen=True)
class RatingResult:
    wallet_id: int | None
    entries: int
    total: Decimal


NOTHING = RatingResult(wallet_id=None, entries=0, total=Decimal(0))

# PostgreSQL's round(numeric, 6) rounds half away from zero, as agencies.plans.rebilled_amount (ROUND_HALF_UP)
# does: tests/wallets/test_wallet_property.py holds the two to the same answers.
# The one place usage entries are written.
_RATE_SQL = f"""
WITH rated AS MATERIALIZED (
    SELECT w.id AS wallet_id, w.subaccount_id, w.currency, w.balance,
           COALESCE((SELECT e.seq FROM {WalletEntry._meta.db_table} e WHERE e.wallet_id = w.id
                     ORDER BY e.seq DESC LIMIT 1), 0) AS last_seq,
           s.since
    FROM unnest(%(subaccount_ids)s::bigint[], %(since)s::timestamptz[]) AS s(subaccount_id, since)
    JOIN {Wallet._meta.db_table} w ON w.subaccount_id = s.subaccount_id
), new AS MATERIALIZED (
    SELECT r.wallet_id, r.balance, r.last_seq, d.id AS delta_id, d.units_delta, d.cost_delta, l.product,
           l.category, l.day, l.account_sid, m.multiplier, round(d.cost_delta * m.multiplier, 6) AS client_amount,
           row_number() OVER (PARTITION BY r.wallet_id ORDER BY d.id) AS n
    FROM rated r
    JOIN {UsageLine._meta.db_table} l ON l.subaccount_id = r.subaccount_id
    JOIN {UsageDelta._meta.db_table} d ON d.line_id = l.id
    JOIN unnest(%(m_subaccount_ids)s::bigint[], %(m_products)s::text[], %(m_multipliers)s::numeric[])
         AS m(subaccount_id, product, multiplier) ON m.subaccount_id = r.subaccount_id AND m.product = l.product
    WHERE d.fetched_at >= r.since AND d.currency = r.currency
      AND NOT EXISTS (SELECT 1 FROM {WalletEntry._meta.db_table} e WHERE e.usage_delta_id = d.id)
), written AS (
    INSERT INTO {WalletEntry._meta.db_table}
        (wallet_id, seq, kind, amount, balance_after, usage_delta_id, product, category, day, units_delta,
         cost_delta, multiplier, provider_account, note, created_by, created_at)
    SELECT wallet_id, last_seq + n,
           CASE WHEN client_amount < 0 THEN %(credit)s ELSE %(debit)s END,
           -client_amount, balance - sum(client_amount) OVER (PARTITION BY wallet_id ORDER BY n),
           delta_id, product, category, day, units_delta, cost_delta, multiplier, account_sid, '', 'rating', now()
    FROM new ORDER BY wallet_id, n
    RETURNING wallet_id, amount
)
SELECT wallet_id, count(*), sum(amount) FROM written GROUP BY wallet_id
"""  # noqa: S608 — only our own table names are formatted in

_MOVE_BALANCES_SQL = f"""
UPDATE {Wallet._meta.db_table} w SET balance = w.balance + t.total
FROM unnest(%(wallet_ids)s::bigint[], %(totals)s::numeric[]) AS t(wallet_id, total)
WHERE w.id = t.wallet_id
"""  # noqa: S608


def wallets_rate(*, subaccount_ids: Iterable[int]) -> dict[int, RatingResult]:
    """Rate what is new for these sub-accounts (those switched on and enabled; the others are skipped), by
    subaccount id. Safe to run twice and concurrently."""
    rateable = subaccounts_rateable(subaccount_ids=subaccount_ids)
    if not rateable:
        return {}
    Wallet.objects.bulk_create([Wallet(subaccount_id=subaccount_id) for subaccount_id in rateable],
                               ignore_conflicts=True, batch_size=2000)
    wallet_ids = dict(Wallet.objects.filter(subaccount_id__in=list(rateable)).order_by("pk")
                      .values_list("pk", "subaccount_id"))
    results: dict[int, RatingResult] = {}
    ordered = list(wallet_ids)
    for start in range(0, len(ordered), RATING_BATCH):
        batch = {wallet_id: rateable[wallet_ids[wallet_id]] for wallet_id in ordered[start:start + RATING_BATCH]}
        for wallet_id, result in _rate_batch(batch).items():
            results[wallet_ids[wallet_id]] = result
    return results


@transaction.atomic
def _rate_batch(batch: dict[int, RateableSubAccount]) -> dict[int, RatingResult]:
    wallets_lock(wallet_ids=batch)
    rows = list(batch.values())
    multiplied = [(row.subaccount_id, str(product), multiplier) for row in rows
                  for product, multiplier in row.multipliers.items()]
    with connection.cursor() as cursor:
        cursor.execute(_RATE_SQL, {
            "subaccount_ids": [row.subaccount_id for row in rows], "since": [row.since for row in rows],
            "m_subaccount_ids": [m[0] for m in multiplied], "m_products": [m[1] for m in multiplied],
            "m_multipliers": [m[2] for m in multiplied],
            "credit": WalletEntry.Kind.USAGE_CREDIT, "debit": WalletEntry.Kind.USAGE_DEBIT,
        })
        written = {wallet_id: (count, total) for wallet_id, count, total in cursor.fetchall()}
        if written:
            cursor.execute(_MOVE_BALANCES_SQL, {"wallet_ids": list(written),
                                                "totals": [total for _, total in written.values()]})
            cursor.execute("SELECT wallet_id, max(seq) FROM wallets_walletentry WHERE wallet_id = ANY(%s) "
                           "GROUP BY wallet_id", [list(written)])
            last_seqs = dict(cursor.fetchall())
    # The usage details' rollups, in the same transaction as the entries they count: one pass for the batch.
    entries_rollups_add(after_seqs={wallet_id: last_seqs[wallet_id] - count
                                    for wallet_id, (count, _total) in written.items()})
    return {wallet_id: RatingResult(wallet_id=wallet_id, entries=written.get(wallet_id, (0, 0))[0],
                                    total=Decimal(written.get(wallet_id, (0, Decimal(0)))[1]))
            for wallet_id in batch}


def wallet_rate(*, subaccount_id: int) -> RatingResult:
    """Rate what is new for one sub-account. Safe to run twice and concurrently."""
    return wallets_rate(subaccount_ids=[subaccount_id]).get(subaccount_id, NOTHING)


def subaccounts_to_rate() -> list[int]:
    """Switched-on sub-accounts with a delta not yet rated (for the beat's own run)."""
    since_rebilled = SubAccountRebilling.objects.filter(switched_on=True, switched_on_at__isnull=False)
    pending = UsageDelta.objects.filter(
        line__subaccount__rebilling__in=since_rebilled,
        fetched_at__gte=F("line__subaccount__rebilling__switched_on_at"),
        wallet_entry__isnull=True,
    )
    return sorted(set(pending.values_list("line__subaccount_id", flat=True)))

