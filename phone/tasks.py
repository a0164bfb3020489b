"""Usage pull jobs. Beat runs `agencies.tasks.usage_pull_dispatch` in public, which sends this agency task to
the agencies that have a pull due; each sends one task per USAGE_PULL_BATCH due sub-accounts, inside the agency's
schema (phone.services.pull_schedule), whose reads are stored together in one batch."""

import logging
import time
from functools import partial

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from phone.selectors import providers_to_pull, retired_accounts_to_pull
from phone.services import (
    PullOutcome,
    provider_lc_phone_resume,
    provider_lc_phone_suspend,
    usage_pull_retired_accounts,
    usage_pulls,
)
from phone.services.pull_schedule import usage_pull_pending_release, usage_pulls_due
from phone.usage_client import UsageFetchError
from rebill.celery import AgencyTask

log = logging.getLogger(__name__)

# Sub-accounts per pull task: read one after the other, then stored in one transaction and one statement.
USAGE_PULL_BATCH = 20
# A pull task starts no read after this many seconds; the sub-accounts left wait for the next pull. One read
# that waits out Twilio's timeouts and retries takes about a minute, so what was read is stored well within the
# soft time limit (540 s) even when Twilio is slow for the whole batch.
USAGE_READ_BUDGET_SECONDS = 300


def _batches(ids: list[int]) -> list[list[int]]:
    return [ids[start:start + USAGE_PULL_BATCH] for start in range(0, len(ids), USAGE_PULL_BATCH)]


def _read_until() -> float:
    return time.monotonic() + USAGE_READ_BUDGET_SECONDS


@shared_task(base=AgencyTask)
def usage_pull_agency() -> int:
    due = usage_pulls_due(now=timezone.now())
    for batch in _batches(due.provider_ids):
        # A pull still queued after one interval is dropped: the next one covers the same window.
        transaction.on_commit(partial(usage_pull_subaccounts.apply_async, (batch,), expires=due.expires_seconds))
    return len(due.provider_ids)


@shared_task(base=AgencyTask)
def usage_reread_agency() -> int:
    """Daily: re-read the last 35 days of every sub-account, and of every account a sub-account stopped
    using less than 35 days ago, so late corrections by Twilio are stored."""
    provider_ids = list(providers_to_pull().values_list("pk", flat=True))
    for batch in _batches(provider_ids):
        transaction.on_commit(partial(usage_pull_subaccounts.delay, batch, full_reread=True))
    retired_ids = list(retired_accounts_to_pull(now=timezone.now()).values_list("pk", flat=True))
    for batch in _batches(retired_ids):
        transaction.on_commit(partial(usage_reread_retired_accounts.delay, batch))
    return len(provider_ids) + len(retired_ids)


@shared_task(base=AgencyTask, time_limit=600, soft_time_limit=540)
def usage_reread_retired_accounts(retired_ids: list[int]) -> list[list[int | str]]:
    """Re-read these accounts sub-accounts stopped using, stored in one batch: [retired id, outcome] each (one
    Twilio could not read is re-read by tomorrow's re-read)."""
    results = usage_pull_retired_accounts(retired_ids=retired_ids, read_until=_read_until())
    return [[retired_id, str(result.outcome)] for retired_id, result in results.items()]


# Hard limit well above the client's worst case (timeouts and backoff) so a stuck pull frees its worker.
@shared_task(base=AgencyTask, time_limit=600, soft_time_limit=540)
def usage_pull_subaccounts(provider_ids: list[int], full_reread: bool = False) -> list[list[int | str]]:
    """Pull these sub-accounts and store them in one batch: [provider id, outcome] each, "failed" where Twilio
    could not be read (not retried here: the next beat run reaches back to the last successful pull)."""
    return _pull_batch(provider_ids, full_reread=full_reread)


def _pull_batch(provider_ids: list[int], *, full_reread: bool) -> list[list[int | str]]:
    try:
        results = usage_pulls(provider_ids=provider_ids, full_reread=full_reread, read_until=_read_until())
    finally:
        for provider_id in provider_ids:
            usage_pull_pending_release(provider_id=provider_id)
    return [[provider_id, "failed" if result.outcome == PullOutcome.FETCH_FAILED else str(result.outcome)]
            for provider_id, result in results.items()]


@shared_task(base=AgencyTask, time_limit=600, soft_time_limit=540)
def usage_pull_subaccount(provider_id: int, full_reread: bool = False) -> str:
    """One sub-account's pull (credentials just fixed): a batch of one."""
    [[_, outcome]] = _pull_batch([provider_id], full_reread=full_reread)
    return str(outcome)


@shared_task(base=AgencyTask, autoretry_for=(UsageFetchError,), retry_backoff=30, retry_backoff_max=3600,
             max_retries=None)
def lc_phone_subaccount_suspend(provider_id: int) -> bool:
    # Retried until Twilio answers: until then the platform pays for any usage on it.
    return provider_lc_phone_suspend(provider_id=provider_id)


@shared_task(base=AgencyTask, autoretry_for=(UsageFetchError,), retry_backoff=30, retry_backoff_max=3600,
             max_retries=None)
def lc_phone_subaccount_resume(provider_id: int) -> bool:
    # Retried until Twilio answers: until then the client's LC Phone numbers do not work.
    return provider_lc_phone_resume(provider_id=provider_id)
