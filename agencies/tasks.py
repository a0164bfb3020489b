from datetime import timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.selectors import agencies_all
from agencies.services import agencies_usage_pull_claim

USAGE_PULL_AGENCY_TASK = "phone.tasks.usage_pull_agency"


@shared_task
def fan_out_to_agencies(task_name: str) -> int:
    """Beat runs this in public; it sends `task_name` once per agency, carrying that agency's schema."""
    sent = 0
    for agency in agencies_all().iterator():
        with tenant_context(agency):
            current_app.send_task(task_name)
        sent += 1
    return sent


# Agencies per message of the usage tick: a tick over 1,000 due agencies sends 20 messages, not 1,000
# (publishing is what a tick costs); workers share the chunks.
USAGE_PULL_CHUNK = 50


@shared_task
def usage_pull_dispatch() -> int:
    """Beat's usage tick, in public: the agencies with a pull due, none of the others and none whose visit is still
    queued, sent to workers in chunks. One claim, a few messages on one broker connection."""
    lease = timedelta(seconds=settings.USAGE_PULL_INTERVAL_SECONDS)  # as long as a visit may stay queued
    schemas = agencies_usage_pull_claim(now=timezone.now(), lease=lease)
    with current_app.producer_or_acquire() as producer:
        for start in range(0, len(schemas), USAGE_PULL_CHUNK):
            usage_pull_agencies.apply_async((schemas[start:start + USAGE_PULL_CHUNK],), producer=producer,
                                            expires=settings.USAGE_PULL_INTERVAL_SECONDS)
    return len(schemas)


@shared_task
def usage_pull_agencies(schema_names: list[str]) -> int:
    """A chunk of the tick, in public: each agency's visit (its due sub-accounts queued) inside its own schema."""
    visit = current_app.tasks[USAGE_PULL_AGENCY_TASK]
    queued = 0
    for agency in agencies_all().filter(schema_name__in=schema_names):
        # A worker runs in autocommit: the visit's on-commit sends happen here, inside the agency's schema.
        with tenant_context(agency):
            queued += visit()
    return queued
