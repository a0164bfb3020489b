"""The usage pull: read a sub-account's daily usage from Twilio and upsert its usage lines.

Everything is fetched first and stored in one transaction, under a row lock on the sub-account's
provider row, so a pull that dies half-way stores nothing, and two pulls of the same sub-account
take turns and end with the same lines as one.
"""

from __future__ import annotations

import json
import logging
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from agencies.plans import PhoneProvider
from phone.categories import BILLABLE
from phone.crypto import secret_decrypt
from phone.models import ProviderStatus, RetiredAccount, SubAccountProvider
from phone.services.providers import provider_mark_credentials_invalid, provider_record_error
from phone.twilio_access import (
    master_access,
    provider_access,
    twilio_base_url,
    twilio_page_size,
    twilio_retry,
    twilio_timeout,
)
from phone.usage_client import CredentialsInvalid, UsageFetchError, UsageRecord, fetch_daily_usage
from phoneregistry.models import UsageAlert
from phoneregistry.services import usage_alert_raise

log = logging.getLogger(__name__)

WINDOW_DAYS = 3  # a day's totals keep changing for a day or two after it ends
USD = "usd"
CENT = Decimal("0.01")
CATCH_UP_DAYS = 35  # how far a pull reaches back at most; the daily re-read reads all of it


class PullOutcome(StrEnum):
    STORED = "stored"
    SKIPPED_CREDENTIALS_INVALID = "skipped: credentials invalid"
    CREDENTIALS_REJECTED = "credentials rejected"
    PROVIDER_CHANGED = "provider changed during the pull"
    PROVIDER_GONE = "provider removed before the pull ran"
    CURRENCY_REFUSED = "refused: the account is not billed in USD"


@dataclass(frozen=True)
class PullResult:
    outcome: PullOutcome
    records: int = 0  # billable records read
    changed: int = 0  # lines inserted or updated


def usage_window(*, now: datetime, last_pulled_at: datetime | None = None,
                 full_reread: bool = False) -> tuple[date, date]:
    """The UTC days a pull reads: today and the two days before, reaching back to the day of the last
    successful pull (an outage, bad credentials or a worker down for days is caught up), capped at
    CATCH_UP_DAYS; the daily re-read takes the whole CATCH_UP_DAYS for late corrections."""
    today = now.astimezone(UTC).date()
    earliest = today - timedelta(days=CATCH_UP_DAYS - 1)
    if full_reread:
        return earliest, today
    start = today - timedelta(days=WINDOW_DAYS - 1)
    if last_pulled_at is not None:
        start = min(start, last_pulled_at.astimezone(UTC).date())
    return max(start, earliest), today


def usage_pull(*, provider_id: int, start: date | None = None, end: date | None = None,
               full_reread: bool = False) -> PullResult:
    """Pull one sub-account's usage for `start`..`end` (default: usage_window) and store it.

    Raises UsageFetchError when Twilio stays unreachable after the client's retries (recorded on the
    provider for the agency to see; the next pull covers the same days again).
    """
    provider = SubAccountProvider.objects.filter(pk=provider_id).first()
    if provider is None:  # queued before its sub-account was deleted
        return PullResult(PullOutcome.PROVIDER_GONE)
    if provider.status == ProviderStatus.CREDENTIALS_INVALID:
        return PullResult(PullOutcome.SKIPPED_CREDENTIALS_INVALID)
    fetched_at = timezone.now()
    window_start, today = usage_window(now=fetched_at, last_pulled_at=provider.last_pulled_at,
                                       full_reread=full_reread)
    if start is None or end is None:
        start, end = window_start, today
    # Only a read that covers every day since the last successful pull may move last_pulled_at on
    # (a backfill of old days must not make the next pull skip the days in between).
    catches_up = start <= window_start and end >= today
    access = provider_access(provider)
    totals: dict[date, Decimal] = {}
    try:
        records = list(fetch_daily_usage(
            account_sid=access.account_sid, auth_sid=access.auth_sid, auth_token=access.auth_token,
            start=start, end=end, base_url=twilio_base_url(), page_size=twilio_page_size(), timeout=twilio_timeout(),
            retry=twilio_retry(), totals=totals,
        ))
    except CredentialsInvalid as error:
        if provider.provider == PhoneProvider.TWILIO:
            provider_mark_credentials_invalid(
                provider=provider, encrypted_token=provider.twilio_auth_token_encrypted,
                reason="Twilio rejected the Account SID and auth token (401). Enter them again to resume.",
            )
            log.warning("Twilio rejected the credentials of sub-account %s: %s", provider.subaccount_id, error)
            return PullResult(PullOutcome.CREDENTIALS_REJECTED)
        # The platform's master credentials: nothing the agency can fix, so alert the platform instead.
        log.error("LC Phone master credentials rejected reading sub-account %s: %s", provider.subaccount_id, error)
        provider_record_error(provider=provider, reason="LC Phone usage could not be read; the platform is on it.")
        raise
    except UsageFetchError as error:
        provider_record_error(provider=provider, reason=f"Usage could not be read from Twilio: {error}")
        raise
    currencies = {record.price_unit for record in records} - {USD}
    if currencies:
        # Never stored as if it were USD; setup refuses such accounts, so this one changed currency since.
        reason = (f"This Twilio account is billed in {', '.join(sorted(currencies)).upper()}; only USD accounts "
                  "can be rebilled. Nothing was stored.")
        log.error("Sub-account %s: %s", provider.subaccount_id, reason)
        provider_record_error(provider=provider, reason=reason)
        return PullResult(PullOutcome.CURRENCY_REFUSED, records=len(records))
    result = usage_lines_store(provider=provider, account_sid=access.account_sid, records=records,
                               fetched_at=fetched_at, mark_pulled=catches_up)
    if result.outcome == PullOutcome.STORED:
        _alert_unpriced(provider=provider, account_sid=access.account_sid, records=records)
        if full_reread:  # once a day
            usage_totals_check(provider=provider, account_sid=access.account_sid, records=records, totals=totals)
    return result


def _alert_unpriced(*, provider: SubAccountProvider, account_sid: str, records: list[UsageRecord]) -> None:
    """LC Phone usage in a category the price book cannot price (an unmapped one) passes through at
    Twilio's price: the agency is billed, and platform staff are told to add a price."""
    if provider.provider != PhoneProvider.LC_PHONE:
        return
    for record in records:
        if record.category not in BILLABLE:
            usage_alert_raise(subaccount_id=provider.subaccount_id, account_sid=account_sid,
                              kind=UsageAlert.Kind.UNPRICED_CATEGORY, day=record.day, category=record.category,
                              detail=f"{record.usage} {record.usage_unit} of {record.category} billed at Twilio's "
                                     f"price ${record.price}: the price book has no price for it.")


def usage_totals_check(*, provider: SubAccountProvider, account_sid: str, records: list[UsageRecord],
                       totals: dict[date, Decimal]) -> list[date]:
    """Each day's leaves must add up to Twilio's totalprice (to the cent); a gap means a category is
    billed twice or not at all. Returns the days that do not add up (logged and shown to platform staff)."""
    leaves: dict[date, Decimal] = {}
    for record in {(r.category, r.day): r for r in records}.values():
        leaves[record.day] = leaves.get(record.day, Decimal(0)) + record.price
    gaps = []
    for day, total in sorted(totals.items()):
        ours = leaves.get(day, Decimal(0))
        if ours.quantize(CENT, ROUND_HALF_UP) != total.quantize(CENT, ROUND_HALF_UP):
            gaps.append(day)
            detail = f"Leaves add up to ${ours} but Twilio's totalprice is ${total}."
            log.error("Usage of %s (sub-account %s) on %s: %s", account_sid, provider.subaccount_id, day, detail)
            usage_alert_raise(subaccount_id=provider.subaccount_id, account_sid=account_sid,
                              kind=UsageAlert.Kind.TOTAL_MISMATCH, day=day, detail=detail)
    return gaps


_LOCK_PROVIDER = """
SET LOCAL synchronous_commit TO OFF;
SELECT provider, lc_phone_account_sid, twilio_account_sid, subaccount_id
FROM phone_subaccountprovider WHERE id = %s FOR UPDATE
"""
_MARK_PULLED = """
UPDATE phone_subaccountprovider
SET last_pulled_at = CASE WHEN %(mark_pulled)s THEN GREATEST(last_pulled_at, %(fetched_at)s) ELSE last_pulled_at END,
    read_marks = (
        SELECT COALESCE(jsonb_object_agg(day, fetched_at), '{}'::jsonb) FROM (
            SELECT day, max(fetched_at) AS fetched_at FROM (
                SELECT key AS day, value::timestamptz AS fetched_at FROM jsonb_each_text(read_marks)
                UNION ALL
                SELECT value, %(fetched_at)s FROM jsonb_array_elements_text(%(days)s::jsonb)
            ) AS every_mark
            WHERE day >= %(oldest_mark)s  -- nothing older is ever read again
            GROUP BY day
        ) AS newest
    ),
    last_error = '', last_error_at = NULL, updated_at = %(now)s
WHERE id = %(provider_id)s;
"""

# One statement per pull, records passed as one JSON array (cheaper than thousands of bound parameters).
# Prices are the LC Phone price book in force at the read (as pricebook.selectors.lc_phone_prices_in_force);
# a category with no price-book row passes through at Twilio's price, as does every Twilio sub-account.
# On conflict: an older read never overwrites a newer one, an unchanged line is not touched (its revision
# stays), units added since the last pull are priced at today's price book while already-priced units keep
# theirs, and a line that shrinks (Twilio corrected it) keeps its average price.
# The same statement appends one usage delta per line it wrote: the new values minus the line as it was
# before the statement (`existing`, read from the statement's snapshot; the provider row lock keeps every
# other pull of this sub-account out), so a line's cost is always the sum of its deltas.
_UPSERT = """
WITH prices AS (
    SELECT DISTINCT ON (category) category, unit_price
    FROM pricebook_lcphoneprice
    WHERE %(use_price_book)s AND effective_from <= %(fetched_at)s
    ORDER BY category, effective_from DESC
), incoming AS (
    SELECT r->>0 AS category, (r->>1)::date AS day, r->>2 AS product, r->>3 AS usage_unit,
           round((r->>4)::numeric, 6) AS count, round((r->>5)::numeric, 6) AS units,
           round((r->>6)::numeric, 6) AS twilio_price, r->>7 AS currency
    FROM jsonb_array_elements(%(records)s::jsonb) AS r
), marks AS (
    SELECT key::date AS day, value::timestamptz AS fetched_at
    FROM phone_subaccountprovider, jsonb_each_text(read_marks)
    WHERE %(use_marks)s AND id = %(provider_id)s
), fresh AS (
    -- A day a newer read has already stored is left alone, even where that read changed nothing. (The
    -- marks were already merged with this read's days by _MARK_PULLED: a mark newer than it is another's.)
    SELECT i.* FROM incoming i LEFT JOIN marks m USING (day)
    WHERE m.fetched_at IS NULL OR m.fetched_at <= %(fetched_at)s
), existing AS (
    SELECT l.id, l.category, l.day, l.count, l.units, l.twilio_price, l.cost
    FROM fresh i JOIN phone_usageline l
      ON l.subaccount_id = %(subaccount_id)s AND l.day = i.day AND l.category = i.category
     AND l.account_sid = %(account_sid)s
), changed AS (
    -- Most lines are unchanged from one pull to the next: leaving them out here spares ON CONFLICT
    -- locking (and so rewriting) every one of them.
    SELECT i.* FROM fresh i LEFT JOIN existing e USING (day, category)
    WHERE e.id IS NULL OR (e.count, e.units, e.twilio_price) IS DISTINCT FROM (i.count, i.units, i.twilio_price)
), written AS (
    INSERT INTO phone_usageline AS line
        (subaccount_id, provider, account_sid, category, day, product, usage_unit, count, units, twilio_price,
         unit_price, cost, currency, billed_cost, revision, fetched_at, created_at, updated_at)
    SELECT %(subaccount_id)s, %(provider)s, %(account_sid)s, i.category, i.day, i.product, i.usage_unit, i.count,
           i.units, i.twilio_price, p.unit_price, COALESCE(round(i.units * p.unit_price, 6), i.twilio_price),
           i.currency, 0, 1, %(fetched_at)s, %(now)s, %(now)s
    FROM changed i LEFT JOIN prices p USING (category)
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
    RETURNING line.id, line.revision, line.units, line.unit_price, line.cost, line.currency, line.fetched_at
)
INSERT INTO phone_usagedelta (line_id, revision, units_delta, unit_price, cost_delta, currency, fetched_at)
SELECT w.id, w.revision, w.units - COALESCE(e.units, 0),
       CASE WHEN w.unit_price IS NULL OR e.id IS NULL OR w.units >= e.units THEN w.unit_price
            ELSE round(e.cost / e.units, 6) END,
       w.cost - COALESCE(e.cost, 0), w.currency, w.fetched_at
FROM written w LEFT JOIN existing e ON e.id = w.id
"""


# Both statements are prepared once per database connection: parsing and planning them cost more than
# running them on a pull that changes little (see bench/usage_pull.py). PostgreSQL re-parses a prepared
# statement by itself when search_path (the agency's schema) or a table it uses has changed.
_PARAMETER = re.compile(r"%\((\w+)\)s")
_PARAMETER_TYPES = {
    "provider_id": "bigint", "use_price_book": "boolean", "fetched_at": "timestamptz", "records": "text",
    "subaccount_id": "bigint", "provider": "text", "account_sid": "text", "now": "timestamptz",
    "mark_pulled": "boolean", "days": "text", "oldest_mark": "text", "use_marks": "boolean",
}


@dataclass(frozen=True)
class _PreparedStatement:
    name: str
    prepare: str
    execute: str  # with %(name)s placeholders, for the driver to fill in


def _prepared_statement(name: str, sql: str) -> _PreparedStatement:
    order = list(dict.fromkeys(_PARAMETER.findall(sql)))
    body = _PARAMETER.sub(lambda match: f"${order.index(match.group(1)) + 1}", sql.strip().rstrip(";"))
    types = ", ".join(_PARAMETER_TYPES[key] for key in order)
    return _PreparedStatement(name=name, prepare=f"PREPARE {name} ({types}) AS {body}",
                              execute=f"EXECUTE {name} ({', '.join(f'%({key})s' for key in order)})")


_MARK_PULLED_STATEMENT = _prepared_statement("rebill_usage_mark_pulled", _MARK_PULLED)
_UPSERT_STATEMENT = _prepared_statement("rebill_usage_upsert", _UPSERT)
# Which statements each open database connection has prepared (prepared statements outlive transactions).
_prepared_on: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _execute_prepared(cursor: Any, statements: list[_PreparedStatement], params: dict[str, Any]) -> None:
    """Run `statements` in one round trip, preparing first those this connection has not prepared yet."""
    prepared = _prepared_on.setdefault(connection.connection, set())
    missing = [statement for statement in statements if statement.name not in prepared]
    if missing:
        cursor.execute("; ".join(statement.prepare for statement in missing))
        prepared.update(statement.name for statement in missing)
    cursor.execute("; ".join(statement.execute for statement in statements), params)


def _payload(records: Iterable[UsageRecord]) -> tuple[dict[tuple[str, date], UsageRecord], str]:
    latest: dict[tuple[str, date], UsageRecord] = {}
    for record in records:
        latest[(record.category, record.day)] = record  # a record repeated across pages counts once
    payload = json.dumps([
        [category, day.isoformat(), record.product, record.usage_unit, str(record.count), str(record.usage),
         str(record.price), record.price_unit]
        for (category, day), record in sorted(latest.items())
    ])
    return latest, payload


def usage_lines_store(*, provider: SubAccountProvider, account_sid: str, records: Iterable[UsageRecord],
                      fetched_at: datetime, mark_pulled: bool = True) -> PullResult:
    """Upsert the lines of `records` (all read at `fetched_at`) in one transaction."""
    latest, payload = _payload(records)
    # One cursor, three round trips (lock, upsert, commit): at ~100 lines per sub-account the fixed cost of
    # each statement matters as much as the rows (see bench/usage_pull.py).
    with transaction.atomic(), connection.cursor() as cursor:
        # synchronous_commit off: a server crash may lose the last fraction of a second of pulls, which the
        # next pull rewrites (same window, idempotent); anything that later reads these lines and commits
        # normally (a wallet debit) flushes this commit with its own, so nothing downstream can outlive it.
        cursor.execute(_LOCK_PROVIDER, [provider.pk])
        row = cursor.fetchone()
        if row is None:
            return PullResult(PullOutcome.PROVIDER_GONE, records=len(latest))
        kind, lc_phone_account_sid, twilio_account_sid, subaccount_id = row
        current_sid = lc_phone_account_sid if kind == PhoneProvider.LC_PHONE else twilio_account_sid
        if kind != provider.provider or current_sid != account_sid:
            log.info("Sub-account %s changed provider during a pull; its result is dropped", subaccount_id)
            return PullResult(PullOutcome.PROVIDER_CHANGED, records=len(latest))
        now = timezone.now()
        days = sorted({day.isoformat() for _, day in latest})
        oldest_mark = (fetched_at.astimezone(UTC).date() - timedelta(days=CATCH_UP_DAYS)).isoformat()
        statements = [_MARK_PULLED_STATEMENT, _UPSERT_STATEMENT] if latest else [_MARK_PULLED_STATEMENT]
        _execute_prepared(cursor, statements, {
            "provider_id": provider.pk, "use_price_book": kind == PhoneProvider.LC_PHONE, "fetched_at": fetched_at,
            "records": payload, "subaccount_id": subaccount_id, "provider": kind, "account_sid": account_sid,
            "now": now, "mark_pulled": mark_pulled, "days": json.dumps(days), "oldest_mark": oldest_mark,
            "use_marks": True,
        })
        changed = cursor.rowcount if latest else 0
    return PullResult(PullOutcome.STORED, records=len(latest), changed=changed)


def usage_pull_retired(*, retired_id: int) -> PullResult:
    """Re-read an account the sub-account stopped using (the daily re-read, 35 days back, up to the day it
    stopped) and store it under that account, so late corrections around a switch are billed."""
    retired = RetiredAccount.objects.filter(pk=retired_id).first()
    fetched_at = timezone.now()
    if retired is None or retired.pull_until <= fetched_at:
        return PullResult(PullOutcome.PROVIDER_GONE)
    start, today = usage_window(now=fetched_at, full_reread=True)
    end = min(today, retired.retired_at.astimezone(UTC).date())  # later usage of that account is not ours
    if retired.provider == PhoneProvider.LC_PHONE:
        master = master_access()
        auth_sid, auth_token = master.auth_sid, master.auth_token
    else:
        auth_sid, auth_token = retired.account_sid, secret_decrypt(retired.twilio_auth_token_encrypted)
    try:
        records = list(fetch_daily_usage(
            account_sid=retired.account_sid, auth_sid=auth_sid, auth_token=auth_token, start=start, end=end,
            base_url=twilio_base_url(), page_size=twilio_page_size(), timeout=twilio_timeout(), retry=twilio_retry()))
    except CredentialsInvalid:
        # The agency has since changed that account's token: nothing to fix on our side any more.
        log.warning("Retired account %s of sub-account %s: credentials rejected; not re-read",
                    retired.account_sid, retired.subaccount_id)
        return PullResult(PullOutcome.CREDENTIALS_REJECTED)
    if {record.price_unit for record in records} - {USD}:
        log.error("Retired account %s is not billed in USD; not stored", retired.account_sid)
        return PullResult(PullOutcome.CURRENCY_REFUSED, records=len(records))
    latest, payload = _payload(records)
    with transaction.atomic(), connection.cursor() as cursor:
        # The provider row's lock orders this with provider changes and the sub-account's other pulls.
        cursor.execute(_LOCK_PROVIDER_OF_SUBACCOUNT, [retired.subaccount_id])
        row = cursor.fetchone()
        still_retired = RetiredAccount.objects.filter(pk=retired.pk, account_sid=retired.account_sid).exists()
        if row is None or not still_retired:  # the sub-account returned to it (or is gone) meanwhile
            return PullResult(PullOutcome.PROVIDER_CHANGED, records=len(latest))
        if not latest:
            return PullResult(PullOutcome.STORED)
        # No read marks: they are the current account's, and a retired account is read once a day.
        _execute_prepared(cursor, [_UPSERT_STATEMENT], {
            "use_price_book": retired.provider == PhoneProvider.LC_PHONE, "fetched_at": fetched_at,
            "records": payload, "subaccount_id": retired.subaccount_id, "provider": retired.provider,
            "account_sid": retired.account_sid, "now": timezone.now(), "use_marks": False, "provider_id": row[0],
        })
        changed = cursor.rowcount
    return PullResult(PullOutcome.STORED, records=len(latest), changed=changed)


_LOCK_PROVIDER_OF_SUBACCOUNT = """
SET LOCAL synchronous_commit TO OFF;
SELECT id FROM phone_subaccountprovider WHERE subaccount_id = %s FOR UPDATE
"""
