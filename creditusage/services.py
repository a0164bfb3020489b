"""Writes for credit usage details: the rollups (called by the rating, inside its transaction) and spend alerts."""

from __future__ import annotations

from django.db import connection, transaction

from creditusage.models import UsageRollup
from wallets.models import Wallet, WalletEntry

_ROLLUP_SQL = f"""
INSERT INTO {UsageRollup._meta.db_table} AS r (subaccount_id, day, product, units, cost, revenue, entries)
SELECT w.subaccount_id, e.day, e.product, sum(e.units_delta), sum(e.cost_delta), sum(-e.amount), count(*)
FROM {WalletEntry._meta.db_table} e JOIN {Wallet._meta.db_table} w ON w.id = e.wallet_id
WHERE e.wallet_id = %(wallet_id)s AND e.seq > %(after_seq)s AND e.usage_delta_id IS NOT NULL
GROUP BY w.subaccount_id, e.day, e.product
ON CONFLICT (subaccount_id, day, product) DO UPDATE SET
    units = r.units + EXCLUDED.units, cost = r.cost + EXCLUDED.cost, revenue = r.revenue + EXCLUDED.revenue,
    entries = r.entries + EXCLUDED.entries
"""  # noqa: S608 — only our own table names are formatted in


def usage_rollups_add(*, wallet_id: int, after_seq: int) -> None:
    """Fold the usage entries appended after `after_seq` into the daily rollups. Must run in the transaction
    that appended them, with the wallet locked: the lock orders the writers, so no entry is counted twice."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("usage_rollups_add needs the appending transaction (and its wallet lock)")
    with connection.cursor() as cursor:
        cursor.execute(_ROLLUP_SQL, {"wallet_id": wallet_id, "after_seq": after_seq})
