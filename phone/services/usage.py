"""The usage pull: read sub-accounts' daily usage from Twilio and upsert their usage lines.

Everything is fetched first, then stored (phone.services.usage_store) in one transaction per batch of
sub-accounts, under a row lock on each one's provider row, so a pull that dies half-way stores nothing, and
two pulls of the same sub-account take turns and end with the same lines as one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from agencies.plans import PhoneProvider
from phone.categories import BILLABLE
from phone.crypto import secret_decrypt
from phone.models import ProviderStatus, RetiredAccount, SubAccountProvider
from phone.services.providers import provider_mark_credentials_invalid, provider_record_error
from phone.services.usage_store import (
    CATCH_UP_DAYS,
    PullOutcome,
    PullResult,
    UsageRead,
    usage_reads_store,
)
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


@dataclass(frozen=True)
class _Fetched:
    """A sub-account's read, with what is checked once it is stored."""

    provider: SubAccountProvider
    read: UsageRead
    totals: dict[date, Decimal]
    full_reread: bool


def usage_pull(*, provider_id: int, start: date | None = None, end: date | None = None,
               full_reread: bool = False) -> PullResult:
    """Pull one sub-account's usage for `start`..`end` (default: usage_window) and store it (a batch of one).

    Raises UsageFetchError when Twilio stays unreachable after the client's retries (recorded on the
    provider for the agency to see; the next pull covers the same days again).
    """
    fetched = _usage_fetch(provider_id=provider_id, start=start, end=end, full_reread=full_reread)
    if isinstance(fetched, PullResult):
        return fetched
    return _usage_store([fetched])[0]


def usage_pulls(*, provider_ids: Sequence[int], full_reread: bool = False,
                read_until: float | None = None) -> dict[int, PullResult]:
    """Pull several sub-accounts of this agency (each over its usage_window) and store them all in one batch.

    A sub-account Twilio could not be read for is recorded on its provider (FETCH_FAILED) and the others are
    stored all the same; the next pull covers its days again. No read starts after `read_until` (a
    time.monotonic() value): the sub-accounts left are DEFERRED to the next pull, so what was read is stored
    before a slow Twilio runs the task out of time.
    """
    results: dict[int, PullResult] = {}
    batch: list[_Fetched] = []
    for provider_id in dict.fromkeys(provider_ids):
        if _out_of_time(read_until):
            results[provider_id] = PullResult(PullOutcome.DEFERRED)
            continue
        try:
            fetched = _usage_fetch(provider_id=provider_id, start=None, end=None, full_reread=full_reread)
        except UsageFetchError as error:
            log.warning("Usage pull of provider %s failed: %s", provider_id, error)
            results[provider_id] = PullResult(PullOutcome.FETCH_FAILED)
            continue
        if isinstance(fetched, PullResult):
            results[provider_id] = fetched
        else:
            batch.append(fetched)
    for fetched, result in zip(batch, _usage_store(batch), strict=True):
        results[fetched.provider.pk] = result
    return {provider_id: results[provider_id] for provider_id in dict.fromkeys(provider_ids)}


def _out_of_time(read_until: float | None) -> bool:
    return read_until is not None and time.monotonic() >= read_until


def _usage_fetch(*, provider_id: int, start: date | None, end: date | None,
                 full_reread: bool) -> _Fetched | PullResult:
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
    read = UsageRead(subaccount_id=provider.subaccount_id, provider=provider.provider, account_sid=access.account_sid,
                     fetched_at=fetched_at, records=records, provider_id=provider.pk, mark_pulled=catches_up)
    return _Fetched(provider=provider, read=read, totals=totals, full_reread=full_reread)


def _usage_store(batch: list[_Fetched]) -> list[PullResult]:
    results = usage_reads_store([fetched.read for fetched in batch])
    for fetched, result in zip(batch, results, strict=True):
        if result.outcome == PullOutcome.STORED:
            records = list(fetched.read.records)
            _alert_unpriced(provider=fetched.provider, account_sid=fetched.read.account_sid, records=records)
            if fetched.full_reread:  # once a day
                usage_totals_check(provider=fetched.provider, account_sid=fetched.read.account_sid,
                                   records=records, totals=fetched.totals)
    return results


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


def usage_lines_store(*, provider: SubAccountProvider, account_sid: str, records: Iterable[UsageRecord],
                      fetched_at: datetime, mark_pulled: bool = True) -> PullResult:
    """Store one read of a sub-account's current account (a batch of one)."""
    [result] = usage_reads_store([UsageRead(
        subaccount_id=provider.subaccount_id, provider=provider.provider, account_sid=account_sid,
        fetched_at=fetched_at, records=list(records), provider_id=provider.pk, mark_pulled=mark_pulled,
    )])
    return result


def usage_pull_retired(*, retired_id: int) -> PullResult:
    """Re-read one account a sub-account stopped using (a batch of one)."""
    return usage_pull_retired_accounts(retired_ids=[retired_id])[retired_id]


def usage_pull_retired_accounts(*, retired_ids: Sequence[int],
                                read_until: float | None = None) -> dict[int, PullResult]:
    """Re-read accounts sub-accounts stopped using (the daily re-read, 35 days back, up to the day each stopped)
    and store them under those accounts in one batch, so late corrections around a switch are billed. No read
    starts after `read_until`, as in usage_pulls."""
    results: dict[int, PullResult] = {}
    reads: dict[int, UsageRead] = {}
    for retired_id in dict.fromkeys(retired_ids):
        if _out_of_time(read_until):
            results[retired_id] = PullResult(PullOutcome.DEFERRED)
            continue
        read_or_result = _retired_read(retired_id=retired_id)
        if isinstance(read_or_result, PullResult):
            results[retired_id] = read_or_result
        else:
            reads[retired_id] = read_or_result
    results.update(zip(reads, usage_reads_store(list(reads.values())), strict=True))
    return {retired_id: results[retired_id] for retired_id in dict.fromkeys(retired_ids)}


def _retired_read(*, retired_id: int) -> UsageRead | PullResult:
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
    except UsageFetchError as error:
        log.warning("Usage pull of retired account %s failed: %s", retired_id, error)  # tomorrow's re-read retries
        return PullResult(PullOutcome.FETCH_FAILED)
    if {record.price_unit for record in records} - {USD}:
        log.error("Retired account %s is not billed in USD; not stored", retired.account_sid)
        return PullResult(PullOutcome.CURRENCY_REFUSED, records=len(records))
    return UsageRead(subaccount_id=retired.subaccount_id, provider=retired.provider, account_sid=retired.account_sid,
                     fetched_at=fetched_at, records=records, retired_id=retired.pk)
