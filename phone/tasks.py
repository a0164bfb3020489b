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


# Hard limit well above the client's worst case (timeouts and backoff) so a stuck pull frees its worker.
@shared_task(base=AgencyTask, time_limit=600, soft_time_limit=540)
def usage_pull_subaccount(provider_id: int) -> str:
    try:
        result = usage_pull(provider_id=provider_id)
    except UsageFetchError as error:
        # Not retried here: the next beat run re-reads the same rolling window.
        log.warning("Usage pull of provider %s failed: %s", provider_id, error)
        return "failed"
    return str(result.outcome)
