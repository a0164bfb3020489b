"""Usage pull jobs. Beat runs `agencies.tasks.usage_pull_dispatch` in public, which sends this agency task to
the agencies that have a pull due; each sends one task per due sub-account, inside the agency's schema
(phone.services.pull_schedule)."""

import logging
from functools import partial

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from phone.services import usage_pull
from phone.services.pull_schedule import usage_pull_pending_release, usage_pulls_due
from phone.usage_client import UsageFetchError
from rebill.celery import AgencyTask

log = logging.getLogger(__name__)


@shared_task(base=AgencyTask)
def usage_pull_agency() -> int:
    due = usage_pulls_due(now=timezone.now())
    for provider_id in due.provider_ids:
        # A pull still queued after one interval is dropped: the next one covers the same window.
        transaction.on_commit(partial(usage_pull_subaccount.apply_async, (provider_id,), expires=due.expires_seconds))
    return len(due.provider_ids)


# Hard limit well above the client's worst case (timeouts and backoff) so a stuck pull frees its worker.
@shared_task(base=AgencyTask, time_limit=600, soft_time_limit=540)
def usage_pull_subaccount(provider_id: int) -> str:
    try:
        result = usage_pull(provider_id=provider_id)
    except UsageFetchError as error:
        # Not retried here: the next beat run re-reads the same rolling window.
        log.warning("Usage pull of provider %s failed: %s", provider_id, error)
        return "failed"
    finally:
        usage_pull_pending_release(provider_id=provider_id)
    return str(result.outcome)
