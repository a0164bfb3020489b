"""Billing agencies for their sub-accounts' LC Phone usage (DESIGN §6): drain the queue the agency schemas'
triggers fill, into each agency's wallet with the platform. Runs in the public schema only."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction

from agencies.models import Agency
from agency_wallets.models import AgencyWallet, AgencyWalletEntry, UsageToBill
from rebill.tenancy import in_public_schema

# Queued deltas billed per transaction (bounds lock time and statement size; the next run takes the rest).
BILLING_BATCH = 50_000

_CLAIM_SQL = f"""
SELECT q.id, q.schema_name FROM {UsageToBill._meta.db_table} q ORDER BY q.id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
"""  # noqa: S608

# The one place usage entries of agency wallets are written: per wallet, deltas in id order continue its chain.
_BILL_SQL = f"""
WITH wallets AS MATERIALIZED (
    SELECT w.id AS wallet_id, w.currency, w.balance, a.schema_name,
           COALESCE((SELECT e.seq FROM {AgencyWalletEntry._meta.db_table} e WHERE e.wallet_id = w.id
                     ORDER BY e.seq DESC LIMIT 1), 0) AS last_seq
    FROM {AgencyWallet._meta.db_table} w JOIN {Agency._meta.db_table} a ON a.id = w.agency_id
    WHERE w.id = ANY(%(wallet_ids)s)
), new AS MATERIALIZED (
    SELECT DISTINCT ON (w.wallet_id, q.usage_delta_id)
           w.wallet_id, w.balance, w.last_seq, q.usage_delta_id, q.units_delta, q.cost_delta, q.category, q.day
    FROM {UsageToBill._meta.db_table} q
    JOIN wallets w ON w.schema_name = q.schema_name AND w.currency = q.currency
    WHERE q.id = ANY(%(queued_ids)s)
      AND NOT EXISTS (SELECT 1 FROM {AgencyWalletEntry._meta.db_table} e
                      WHERE e.wallet_id = w.wallet_id AND e.usage_delta_id = q.usage_delta_id)
    ORDER BY w.wallet_id, q.usage_delta_id, q.id
), numbered AS (
    SELECT *, row_number() OVER (PARTITION BY wallet_id ORDER BY usage_delta_id) AS n FROM new
), written AS (
    INSERT INTO {AgencyWalletEntry._meta.db_table}
        (wallet_id, seq, kind, amount, balance_after, usage_delta_id, category, day, units_delta, note, created_at)
    SELECT wallet_id, last_seq + n, CASE WHEN cost_delta < 0 THEN %(credit)s ELSE %(debit)s END, -cost_delta,
           balance - sum(cost_delta) OVER (PARTITION BY wallet_id ORDER BY n),
           usage_delta_id, category, day, units_delta, '', now()
    FROM numbered ORDER BY wallet_id, n
    RETURNING wallet_id, amount
)
SELECT wallet_id, count(*), sum(amount) FROM written GROUP BY wallet_id
"""  # noqa: S608

_MOVE_BALANCES_SQL = f"""
UPDATE {AgencyWallet._meta.db_table} w SET balance = w.balance + t.total
FROM unnest(%(wallet_ids)s::bigint[], %(totals)s::numeric[]) AS t(wallet_id, total) WHERE w.id = t.wallet_id
"""  # noqa: S608

# Only rows whose agency was found are done with (billed now, or a duplicate of a delta already billed).
_DONE_SQL = f"""
DELETE FROM {UsageToBill._meta.db_table} q USING {AgencyWallet._meta.db_table} w, {Agency._meta.db_table} a
WHERE q.id = ANY(%(queued_ids)s) AND a.schema_name = q.schema_name AND w.agency_id = a.id
  AND w.currency = q.currency AND w.id = ANY(%(wallet_ids)s)
"""  # noqa: S608


@dataclass(frozen=True)
class AgencyBillingResult:
    entries: int
    wallets: int
    total: Decimal


@transaction.atomic
def agency_wallets_bill(*, limit: int = BILLING_BATCH) -> AgencyBillingResult:
    """Bill up to `limit` queued LC Phone deltas, each once, into their agencies' wallets. Safe to run twice and
    at once (a second run skips the rows the first has claimed)."""
    if not in_public_schema():
        raise RuntimeError("agency wallets are billed from the public schema")
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"limit": limit})
        claimed = cursor.fetchall()
        if not claimed:
            return AgencyBillingResult(entries=0, wallets=0, total=Decimal(0))
        queued_ids = [row[0] for row in claimed]
        agency_ids = list(Agency.objects.filter(schema_name__in={row[1] for row in claimed})
                          .values_list("pk", flat=True))
        AgencyWallet.objects.bulk_create([AgencyWallet(agency_id=agency_id) for agency_id in agency_ids],
                                         ignore_conflicts=True)
        wallet_ids = list(AgencyWallet.objects.select_for_update().filter(agency_id__in=agency_ids)
                          .order_by("pk").values_list("pk", flat=True))
        cursor.execute(_BILL_SQL, {"wallet_ids": wallet_ids, "queued_ids": queued_ids,
                                   "credit": AgencyWalletEntry.Kind.USAGE_CREDIT,
                                   "debit": AgencyWalletEntry.Kind.USAGE_DEBIT})
        written = {wallet_id: (count, total) for wallet_id, count, total in cursor.fetchall()}
        if written:
            cursor.execute(_MOVE_BALANCES_SQL, {"wallet_ids": list(written),
                                                "totals": [total for _, total in written.values()]})
        cursor.execute(_DONE_SQL, {"queued_ids": queued_ids, "wallet_ids": wallet_ids})
    return AgencyBillingResult(entries=sum(count for count, _ in written.values()), wallets=len(written),
                               total=sum((total for _, total in written.values()), Decimal(0)))
