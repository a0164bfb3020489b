"""The usage pull: read a sub-account's daily usage from Twilio and upsert its usage lines.

Everything is fetched first and stored in one transaction, under a row lock on the sub-account's
provider row, so a pull that dies half-way stores nothing, and two pulls of the same sub-account
take turns and end with the same lines as one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from django.db import connection, transaction
from django.utils import timezone
from psycopg2.extras import execute_values

from agencies.plans import PhoneProvider
from phone.models import ProviderStatus, SubAccountProvider
from phone.services.providers import provider_mark_credentials_invalid, provider_record_error
from phone.twilio_access import provider_access, twilio_base_url, twilio_page_size, twilio_retry, twilio_timeout
from phone.usage_client import CredentialsInvalid, UsageFetchError, UsageRecord, fetch_daily_usage
from pricebook.selectors import lc_phone_prices_in_force

log = logging.getLogger(__name__)

WINDOW_DAYS = 3  # a day's totals keep changing for a day or two after it ends
MICRO = Decimal("0.000001")


class PullOutcome(StrEnum):
    STORED = "stored"
    SKIPPED_CREDENTIALS_INVALID = "skipped: credentials invalid"
    CREDENTIALS_REJECTED = "credentials rejected"
    PROVIDER_CHANGED = "provider changed during the pull"


@dataclass(frozen=True)
class PullResult:
    outcome: PullOutcome
    records: int = 0  # billable records read
    changed: int = 0  # lines inserted or updated


def usage_window(*, now: datetime) -> tuple[date, date]:
    """The rolling window of UTC days pulled each time: today and the days before it."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=WINDOW_DAYS - 1), today


def usage_pull(*, provider_id: int, start: date | None = None, end: date | None = None) -> PullResult:
    """Pull one sub-account's usage for `start`..`end` (default: the rolling window) and store it.

    Raises UsageFetchError when Twilio stays unreachable after the client's retries (recorded on the
    provider for the agency to see; the next pull covers the same days again).
    """
    provider = SubAccountProvider.objects.select_related("subaccount").get(pk=provider_id)
    if provider.status == ProviderStatus.CREDENTIALS_INVALID:
        return PullResult(PullOutcome.SKIPPED_CREDENTIALS_INVALID)
    fetched_at = timezone.now()
    if start is None or end is None:
        start, end = usage_window(now=fetched_at)
    access = provider_access(provider)
    try:
        records = list(fetch_daily_usage(
            account_sid=access.account_sid, auth_sid=access.auth_sid, auth_token=access.auth_token,
            start=start, end=end, base_url=twilio_base_url(), page_size=twilio_page_size(), timeout=twilio_timeout(),
            retry=twilio_retry(),
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
    return usage_lines_store(provider=provider, account_sid=access.account_sid, records=records,
                             fetched_at=fetched_at)


def _micro(value: Decimal) -> Decimal:
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


# An older read never overwrites a newer one, and an unchanged line is not touched (its revision stays).
# LC Phone: units added since the last pull are priced at today's price book, already-priced units keep
# theirs; a line that shrinks (Twilio corrected it) keeps its average price.
_UPSERT = """
INSERT INTO phone_usageline AS line
    (subaccount_id, provider, account_sid, category, day, product, usage_unit, count, units, twilio_price,
     unit_price, cost, billed_cost, revision, fetched_at, created_at, updated_at)
VALUES %s
ON CONFLICT (subaccount_id, account_sid, category, day) DO UPDATE SET
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
    revision = line.revision + 1,
    fetched_at = EXCLUDED.fetched_at,
    updated_at = EXCLUDED.updated_at
WHERE line.fetched_at <= EXCLUDED.fetched_at
  AND (line.count, line.units, line.twilio_price)
      IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.units, EXCLUDED.twilio_price)
"""
_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 1, %s, %s, %s)"


def usage_lines_store(*, provider: SubAccountProvider, account_sid: str, records: Iterable[UsageRecord],
                      fetched_at: datetime) -> PullResult:
    """Upsert the lines of `records` (all read at `fetched_at`) in one transaction."""
    latest: dict[tuple[str, date], UsageRecord] = {}
    for record in records:
        latest[(record.category, record.day)] = record  # a record repeated across pages counts once
    now = timezone.now()
    with transaction.atomic():
        locked = SubAccountProvider.objects.select_for_update().get(pk=provider.pk)
        if locked.provider != provider.provider or locked.account_sid != account_sid:
            log.info("Sub-account %s changed provider during a pull; its result is dropped", locked.subaccount_id)
            return PullResult(PullOutcome.PROVIDER_CHANGED, records=len(latest))
        prices = lc_phone_prices_in_force(at=fetched_at) if locked.provider == PhoneProvider.LC_PHONE else {}
        rows = []
        for (category, day), record in sorted(latest.items()):
            twilio_price = _micro(record.price)
            unit_price = prices.get(category)
            # Categories without a price-book row (carrier fees, ...) pass through at Twilio's price.
            cost = twilio_price if unit_price is None else _micro(record.usage * unit_price)
            rows.append((locked.subaccount_id, locked.provider, account_sid, category, day, record.product,
                         record.usage_unit, record.count, record.usage, twilio_price, unit_price, cost,
                         fetched_at, now, now))
        changed = 0
        if rows:
            with connection.cursor() as cursor:
                execute_values(cursor.cursor, _UPSERT, rows, template=_ROW, page_size=len(rows))  # type: ignore[attr-defined]
                changed = cursor.rowcount
        locked.last_pulled_at = fetched_at
        locked.last_error, locked.last_error_at = "", None
        locked.save(update_fields=["last_pulled_at", "last_error", "last_error_at", "updated_at"])
    return PullResult(PullOutcome.STORED, records=len(latest), changed=changed)
