from celery import current_app, shared_task
from django_tenants.utils import tenant_context

from agencies.selectors import agencies_all


@shared_task
def fan_out_to_agencies(task_name: str) -> int:
    """Beat runs this in public; it sends `task_name` once per agency, carrying that agency's schema."""
    sent = 0
    for agency in agencies_all().iterator():
        with tenant_context(agency):
            current_app.send_task(task_name)
        sent += 1
    return sent
