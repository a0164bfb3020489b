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


@shared_task
def usage_pull_dispatch() -> int:
    """Beat's usage tick, in public: one task for each agency with a pull due, none for the others and none for
    one whose task is still queued. One claim, then every message on one broker connection."""
    lease = timedelta(seconds=settings.USAGE_PULL_INTERVAL_SECONDS)  # as long as the agency's task may stay queued
    schemas = agencies_usage_pull_claim(now=timezone.now(), lease=lease)
    with current_app.producer_or_acquire() as producer:
        for schema_name in schemas:
            current_app.send_task(USAGE_PULL_AGENCY_TASK, headers={"_schema_name": schema_name}, producer=producer,
                                  expires=settings.USAGE_PULL_INTERVAL_SECONDS)
    return len(schemas)
