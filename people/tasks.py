from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone

from rebill.celery import AgencyTask


@shared_task(base=AgencyTask)
def purge_expired_sessions() -> int:
    """Sessions live in each agency's schema, so `clearsessions` in public never reaches them."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
