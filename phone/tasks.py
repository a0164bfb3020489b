"""Usage pull jobs. Beat runs `agencies.tasks.fan_out_to_agencies("phone.tasks.usage_pull_agency")` in
public; each agency's task sends one task per sub-account, inside the agency's schema."""

import logging
from functools import partial

from celery import shared_task
from django.db import transaction

from phone.selectors import providers_to_pull
from phone.services import usage_pull
from phone.usage_client import UsageFetchError
from rebill.celery import AgencyTask

log = logging.getLogger(__name__)


@shared_task(base=AgencyTask)
def usage_pull_agency() -> int:
    provider_ids = list(providers_to_pull().values_list("pk", flat=True))
    for provider_id in provider_ids:
        transaction.on_commit(partial(usage_pull_subaccount.delay, provider_id))
    return len(provider_ids)


@shared_task(base=AgencyTask)
def usage_reread_agency() -> int:
    """Daily: re-read the last 35 days of every sub-account, so late corrections by Twilio are stored."""
    provider_ids = list(providers_to_pull().values_list("pk", flat=True))
    for provider_id in provider_ids:
        transaction.on_commit(partial(usage_pull_subaccount.delay, provider_id, full_reread=True))
    return len(provider_ids)


# Hard limit well above the client's worst case (timeouts and backoff) so a stuck pull frees its worker.
@shared_task(base=AgencyTask, time_limit=600, soft_time_limit=540)
def usage_pull_subaccount(provider_id: int, full_reread: bool = False) -> str:
    try:
        result = usage_pull(provider_id=provider_id, full_reread=full_reread)
    except UsageFetchError as error:
        # Not retried here: the next beat run reaches back to the last successful pull.
        log.warning("Usage pull of provider %s failed: %s", provider_id, error)
        return "failed"
    return str(result.outcome)
