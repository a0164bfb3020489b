"""Storing usage reads: the lines of many accounts' reads upserted in batches, one transaction and one statement each.

A batch locks the provider row of every sub-account in it (in id order, so two batches sharing a sub-account take
turns instead of deadlocking), drops the reads whose provider changed while they were being read, copies every
record into a temporary table and upserts them all, with their usage deltas, in one statement. A batch of one is
how a single sub-account's pull is stored: there is no other path.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from django.db import connection, transaction
from django.utils import timezone

from agencies.plans import PhoneProvider
from phone.usage_client import UsageRecord

log = logging.getLogger(__name__)

CATCH_UP_DAYS = 35  # how far a pull reaches back at most; the daily re-read reads all of it


class PullOutcome(StrEnum):
    STORED = "stored"
    SKIPPED_CREDENTIALS_INVALID = "skipped: credentials invalid"
    CREDENTIALS_REJECTED = "credentials rejected"
    PROVIDER_CHANGED = "provider changed during the pull"
    PROVIDER_GONE = "provider removed before the pull ran"
    CURRENCY_REFUSED = "refused: the account is not billed in USD"
    FETCH_FAILED = "failed: Twilio could not be read"
    DEFERRED = "deferred: the batch ran out of time before reading it"


@dataclass(frozen=True)
class PullResult:
    outcome: PullOutcome
    records: int = 0  # billable records read
    changed: int = 0  # lines inserted or updated


@dataclass(frozen=True)
class UsageRead:
    """One Twilio account's usage as read at `fetched_at`, to be stored as a sub-account's lines.

    A read of the sub-account's current account names its provider row (`provider_id`) and is stored only if
    that row still uses the same provider and account; it moves the row's read marks on. A re-read of an
    account the sub-account stopped using names its RetiredAccount row (`retired_id`) and is stored only while
    that row is still there; it leaves the read marks alone (they are the current account's).
    """

    subaccount_id: int
    provider: str  # the PhoneProvider the account was read as
    account_sid: str
    fetched_at: datetime
    records: Sequence[UsageRecord] = field(default_factory=tuple)
    provider_id: int | None = None
    retired_id: int | None = None
    mark_pulled: bool = True  # the read covers every day since the last pull: last_pulled_at moves on

    def __post_init__(self) -> None:
        if (self.provider_id is None) == (self.retired_id is None):
            raise ValueError("a usage read is either of a provider's current account or of a retired account")


def _copy_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _days(latest: dict[tuple[str, date], UsageRecord]) -> dict[str, list[str]]:
    """Each day's records as rows of COPY's text format (the record's own columns of the incoming table)."""
    days: dict[str, list[str]] = {}
    for (category, day), record in latest.items():
        fields = (category, day.isoformat(), record.product, record.usage_unit, str(record.count), str(record.usage),
                  str(record.price), record.price_unit)
        row = "\t".join(fields)
        # Twilio's categories and units never hold a tab, newline or backslash: escaping is for the day one does.
        if row.count("\t") != len(fields) - 1 or "\\" in row or "\n" in row or "\r" in row:
            row = "\t".join(map(_copy_escape, fields))
        days.setdefault(fields[1], []).append(row)
    return days


def _day_digests(days: dict[str, list[str]]) -> dict[str, str]:
    """A digest of each day's records, as stable across processes as the records themselves."""
    return {day: hashlib.blake2b("\n".join(sorted(rows)).encode(), digest_size=12).hexdigest()
            for day, rows in days.items()}


def _unchanged_days(digests: dict[str, str], marks: dict[str, str], stored: dict[str, list[str]]) -> set[str]:
    """The days whose records are those of the read that marked them (its digest, taken at its mark): that read
    left their lines as these records would, so upserting them again would change nothing."""
    return {day for day, digest in digests.items()
            if day in marks and stored.get(day) == [marks[day], digest]}


def _latest(records: Iterable[UsageRecord]) -> dict[tuple[str, date], UsageRecord]:
    latest: dict[tuple[str, date], UsageRecord] = {}
    for record in records:
        latest[(record.category, record.day)] = record  # a record repeated across pages counts once
    return latest


def usage_reads_store(reads: Sequence[UsageRead]) -> list[PullResult]:
    """Store `reads` (of one agency schema) in as few batches as possible; one result per read, in order.

    A batch holds each (sub-account, account) once: two reads of the same account go to successive batches,
    in the order given, so the newer one is compared with what the older one stored.
    """
    results: list[PullResult | None] = [None] * len(reads)
    pending = list(range(len(reads)))
    while pending:
        batch: list[int] = []
        later: list[int] = []
        keys: set[tuple[int, str]] = set()
        for index in pending:
            key = (reads[index].subaccount_id, reads[index].account_sid)
            if key in keys or (later and key in {(reads[i].subaccount_id, reads[i].account_sid) for i in later}):
                later.append(index)
            else:
                keys.add(key)
                batch.append(index)
        for index, result in zip(batch, _store_batch([reads[index] for index in batch]), strict=True):
            results[index] = result
        pending = later
    return [result for result in results if result is not None]


_LOCK_PROVIDERS = """
SET LOCAL synchronous_commit TO OFF;
SELECT id, provider, lc_phone_account_sid, twilio_account_sid, subaccount_id, read_marks, read_digests
FROM phone_subaccountprovider WHERE id = ANY(%s) OR subaccount_id = ANY(%s)
ORDER BY id FOR UPDATE
"""
# synchronous_commit off: a server crash may lose the last fraction of a second of pulls, which the next pull
# rewrites (same window, idempotent); anything that later reads these lines and commits normally (a wallet
# debit) flushes this commit with its own, so nothing downstream can outlive it.

# A read's day moves that day's mark on (and takes its digest) unless a newer read has already marked it.
_MARK_PULLED = """
UPDATE phone_subaccountprovider AS p
SET last_pulled_at = CASE WHEN r.mark_pulled THEN GREATEST(p.last_pulled_at, r.fetched_at) ELSE p.last_pulled_at END,
    read_marks = (
        SELECT COALESCE(jsonb_object_agg(day, fetched_at), '{}'::jsonb) FROM (
            SELECT day, max(fetched_at) AS fetched_at FROM (
                SELECT key AS day, value::timestamptz AS fetched_at FROM jsonb_each_text(p.read_marks)
                UNION ALL
                SELECT key, r.fetched_at FROM jsonb_each_text(r.digests::jsonb)
            ) AS every_mark
            WHERE day >= r.oldest_mark  -- nothing older is ever read again
            GROUP BY day
        ) AS newest
    ),
    read_digests = (
        SELECT COALESCE(jsonb_object_agg(day, digest), '{}'::jsonb) FROM (
            SELECT COALESCE(n.key, o.key) AS day,
                   CASE WHEN n.key IS NULL OR (p.read_marks ->> n.key)::timestamptz > r.fetched_at THEN o.value
                        ELSE jsonb_build_array(to_jsonb(r.fetched_at), n.value) END AS digest
            FROM jsonb_each(p.read_digests) AS o FULL JOIN jsonb_each(r.digests::jsonb) AS n ON n.key = o.key
        ) AS every_digest
        WHERE day >= r.oldest_mark AND digest IS NOT NULL
    ),
    last_error = '', last_error_at = NULL, updated_at = %(now)s
FROM unnest(%(ids)s::bigint[], %(mark_pulled)s::boolean[], %(fetched_at)s::timestamptz[], %(digests)s::text[],
            %(oldest_mark)s::text[]) AS r(id, mark_pulled, fetched_at, digests, oldest_mark)
WHERE p.id = r.id
"""

# The records of a batch, one row each, with what the row's read says about them.
_INCOMING = "pg_temp.rebill_usage_incoming"
_INCOMING_COLUMNS = (
    "subaccount_id, provider, account_sid, marks_of, price_book, fetched_at, "
    "category, day, product, usage_unit, count, units, twilio_price, currency"
)
_CREATE_INCOMING = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_INCOMING} (
    subaccount_id bigint NOT NULL, provider text NOT NULL, account_sid text NOT NULL,
    marks_of bigint NOT NULL,  -- the provider row whose read marks apply; 0 (none) for a retired account's re-read
    price_book boolean NOT NULL, fetched_at timestamptz NOT NULL,
    category text NOT NULL, day date NOT NULL, product text NOT NULL, usage_unit text NOT NULL,
    count numeric(18, 6) NOT NULL, units numeric(18, 6) NOT NULL, twilio_price numeric(18, 6) NOT NULL,
    currency text NOT NULL
) ON COMMIT DELETE ROWS  -- lives as long as the connection
"""

# One statement per batch. Prices are the LC Phone price book in force at each read (as
# pricebook.selectors.lc_phone_prices_in_force); a category with no price-book row passes through at Twilio's
# price, as does every Twilio sub-account.
# A day a newer read has already stored is left alone, even where that read changed nothing (the read marks;
# _MARK_PULLED has already merged this batch's days into them, so a mark newer than a read is another read's).
# Most lines are unchanged from one pull to the next: `changed` leaves them out, which spares ON CONFLICT
# locking (and so rewriting) every one of them.
# On conflict: an older read never overwrites a newer one, units added since the last pull are priced at the
# price book in force while already-priced units keep theirs, and a line that shrinks (Twilio corrected it)
# keeps its average price.
# The same statement appends one usage delta per line it wrote: the new values minus the line as it was before
# the statement (read in `changed` from the statement's snapshot; the provider row locks keep every other store
# of these sub-accounts out), so a line's cost is always the sum of its deltas.
_UPSERT = f"""
WITH prices AS (
    SELECT DISTINCT ON (r.fetched_at, p.category) r.fetched_at, p.category, p.unit_price
    FROM unnest(%(price_book_reads)s::timestamptz[]) AS r(fetched_at)
    JOIN pricebook_lcphoneprice p ON p.effective_from <= r.fetched_at
    ORDER BY r.fetched_at, p.category, p.effective_from DESC
), marks AS MATERIALIZED (  -- each mark parsed once, not once per record
    SELECT p.id AS provider_id, m.key::date AS day, m.value::timestamptz AS fetched_at
    FROM phone_subaccountprovider p, jsonb_each_text(p.read_marks) AS m
    WHERE p.id = ANY(%(marked)s::bigint[])
), changed AS (
    SELECT i.*, l.id AS line_id, l.units AS old_units, l.cost AS old_cost
    FROM {_INCOMING} i
    LEFT JOIN marks m ON m.provider_id = i.marks_of AND m.day = i.day
    LEFT JOIN phone_usageline l
      ON l.subaccount_id = i.subaccount_id AND l.day = i.day AND l.category = i.category
     AND l.account_sid = i.account_sid
    WHERE (m.fetched_at IS NULL OR m.fetched_at <= i.fetched_at)
      AND (l.id IS NULL OR (l.count, l.units, l.twilio_price) IS DISTINCT FROM (i.count, i.units, i.twilio_price))
), written AS (
    INSERT INTO phone_usageline AS line
        (subaccount_id, provider, account_sid, category, day, product, usage_unit, count, units, twilio_price,
         unit_price, cost, currency, billed_cost, revision, fetched_at, created_at, updated_at)
    SELECT c.subaccount_id, c.provider, c.account_sid, c.category, c.day, c.product, c.usage_unit, c.count,
           c.units, c.twilio_price, p.unit_price, COALESCE(round(c.units * p.unit_price, 6), c.twilio_price),
           c.currency, 0, 1, c.fetched_at, %(now)s, %(now)s
    FROM changed c LEFT JOIN prices p ON c.price_book AND p.fetched_at = c.fetched_at AND p.category = c.category
    ON CONFLICT (subaccount_id, day, category, account_sid) DO UPDATE SET
        provider = EXCLUDED.provider,
        product = EXCLUDED.product,
        usage_unit = EXCLUDED.usage_unit,
        count = EXCLUDED.count,
        units = EXCLUDED.units,
        twilio_price = EXCLUDED.twilio_price,
        unit_price = EXCLUDED.unit_price,
        cost = CASE
            WHEN EXCLUDED.unit_price IS NULL THEN EXCLUDED.twilio_price
            WHEN EXCLUDED.units >= line.units
                THEN line.cost + round((EXCLUDED.units - line.units) * EXCLUDED.unit_price, 6)
            ELSE round(line.cost * EXCLUDED.units / line.units, 6)
        END,
        currency = EXCLUDED.currency,
        revision = line.revision + 1,
        fetched_at = EXCLUDED.fetched_at,
        updated_at = EXCLUDED.updated_at
    WHERE line.fetched_at <= EXCLUDED.fetched_at
      AND (line.count, line.units, line.twilio_price)
          IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.units, EXCLUDED.twilio_price)
    RETURNING line.id, line.subaccount_id, line.account_sid, line.revision, line.units, line.unit_price, line.cost,
              line.currency, line.fetched_at
), appended AS (
    INSERT INTO phone_usagedelta (line_id, revision, units_delta, unit_price, cost_delta, currency, fetched_at)
    SELECT w.id, w.revision, w.units - COALESCE(c.old_units, 0),
           CASE WHEN w.unit_price IS NULL OR c.line_id IS NULL OR w.units >= c.old_units THEN w.unit_price
                ELSE round(c.old_cost / c.old_units, 6) END,
           w.cost - COALESCE(c.old_cost, 0), w.currency, w.fetched_at
    FROM written w LEFT JOIN changed c ON c.line_id = w.id
)
SELECT subaccount_id, account_sid, count(*) FROM written GROUP BY subaccount_id, account_sid
"""  # noqa: S608 — only our own table name is formatted in

def _incoming_rows(reads: list[tuple[UsageRead, list[str]]]) -> io.StringIO:
    """The batch's records in COPY's text format: each read's own columns, then each of its record rows."""
    rows: list[str] = []
    for read, record_rows in reads:
        prefix = "\t".join((str(read.subaccount_id), _copy_escape(read.provider), _copy_escape(read.account_sid),
                            str(read.provider_id if read.retired_id is None else 0),
                            "t" if read.provider == PhoneProvider.LC_PHONE else "f", read.fetched_at.isoformat(), ""))
        rows.extend(prefix + row for row in record_rows)
    rows.append("")
    return io.StringIO("\n".join(rows))


def _store_batch(reads: list[UsageRead]) -> list[PullResult]:
    latest = [_latest(read.records) for read in reads]
    outer_transaction = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK_PROVIDERS, [
            sorted({read.provider_id for read in reads if read.provider_id is not None}),
            sorted({read.subaccount_id for read in reads if read.retired_id is not None}),
        ])
        by_id = {row[0]: row for row in cursor.fetchall()}
        by_subaccount = {row[4]: row for row in by_id.values()}
        retired_ids = [read.retired_id for read in reads if read.retired_id is not None]
        still_retired: set[tuple[int, str]] = set()
        if retired_ids:
            cursor.execute("SELECT id, account_sid FROM phone_retiredaccount WHERE id = ANY(%s)", [retired_ids])
            still_retired = {(row[0], row[1]) for row in cursor.fetchall()}

        results: list[PullResult | None] = []
        kept: list[int] = []
        days = [_days(records) for records in latest]
        digests: dict[int, dict[str, str]] = {}
        to_store = {n: [row for rows in days[n].values() for row in rows] for n in range(len(reads))}
        for n, read in enumerate(reads):
            if read.retired_id is not None:
                # The sub-account returned to that account (or is gone) meanwhile.
                fine = read.subaccount_id in by_subaccount and (read.retired_id, read.account_sid) in still_retired
            else:
                row = by_id.get(read.provider_id)
                if row is None:
                    results.append(PullResult(PullOutcome.PROVIDER_GONE, records=len(latest[n])))
                    continue
                kind, lc_phone_account_sid, twilio_account_sid, subaccount_id = row[1:5]
                current_sid = lc_phone_account_sid if kind == PhoneProvider.LC_PHONE else twilio_account_sid
                fine = (kind == read.provider and current_sid == read.account_sid
                        and subaccount_id == read.subaccount_id)
                if not fine:
                    log.info("Sub-account %s changed provider during a pull; its result is dropped", subaccount_id)
            if not fine:
                results.append(PullResult(PullOutcome.PROVIDER_CHANGED, records=len(latest[n])))
                continue
            results.append(None)
            kept.append(n)
            if read.retired_id is None:
                digests[n] = _day_digests(days[n])
                marks, stored = (json.loads(value) if isinstance(value, str) else value
                                 for value in by_id[read.provider_id][5:7])
                unchanged = _unchanged_days(digests[n], marks, stored)
                if unchanged:
                    to_store[n] = [row for day, rows in days[n].items() if day not in unchanged for row in rows]

        now = timezone.now()
        marking = [n for n in kept if reads[n].retired_id is None]
        if marking:
            cursor.execute(_MARK_PULLED, {
                "now": now,
                "ids": [reads[n].provider_id for n in marking],
                "mark_pulled": [reads[n].mark_pulled for n in marking],
                "fetched_at": [reads[n].fetched_at for n in marking],
                "digests": [json.dumps(digests[n]) for n in marking],
                "oldest_mark": [(reads[n].fetched_at.astimezone(UTC).date() - timedelta(days=CATCH_UP_DAYS))
                                .isoformat() for n in marking],
            })
        changed: dict[tuple[int, str], int] = {}
        with_records = [n for n in kept if to_store[n]]
        if with_records:
            cursor.execute(_CREATE_INCOMING)
            if outer_transaction:  # emptied at every commit, but an outer transaction may hold an earlier batch's
                cursor.execute(f"TRUNCATE {_INCOMING}")
            cursor.cursor.copy_expert(f"COPY {_INCOMING} ({_INCOMING_COLUMNS}) FROM STDIN",
                                      _incoming_rows([(reads[n], to_store[n]) for n in with_records]))
            cursor.execute(_UPSERT, {
                "now": now,
                "price_book_reads": sorted({reads[n].fetched_at for n in with_records
                                            if reads[n].provider == PhoneProvider.LC_PHONE}),
                "marked": [reads[n].provider_id for n in with_records if reads[n].retired_id is None],
            })
            changed = {(subaccount_id, account_sid): count for subaccount_id, account_sid, count in cursor.fetchall()}
    return [result if result is not None else PullResult(
        PullOutcome.STORED, records=len(latest[n]),
        changed=changed.get((reads[n].subaccount_id, reads[n].account_sid), 0))
        for n, result in enumerate(results)]
