"""Spend alert jobs: checked per agency after the rating's own beat; a pause goes to the provider with retries."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from creditusage.services import spend_alert_pause_apply, spend_alert_resume_apply, spend_alerts_check
from rebill.celery import AgencyTask


@shared_task(base=AgencyTask)
def spend_alerts_check_agency() -> int:
    return len(spend_alerts_check(day=timezone.now().date()))


@shared_task(base=AgencyTask, autoretry_for=(Exception,), retry_backoff=30, retry_backoff_max=3600, max_retries=20)
def spend_alert_pause(alert_id: int) -> str:
    return spend_alert_pause_apply(alert_id=alert_id)


@shared_task(base=AgencyTask, autoretry_for=(Exception,), retry_backoff=30, retry_backoff_max=3600, max_retries=20)
def spend_alert_resume(subaccount_id: int) -> str:
    return spend_alert_resume_apply(subaccount_id=subaccount_id)
