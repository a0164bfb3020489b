"""Which sub-accounts beat pulls, and when (DESIGN §9, §12): a tick costs what changed.

Beat visits only agencies whose `usage_pull_due_at` has come. The agency's visit queues the sub-accounts whose
pull is due — every USAGE_PULL_INTERVAL_SECONDS for an account with usage in the last 7 days (or set up in
the last 7 days), every USAGE_PULL_IDLE_INTERVAL_SECONDS for an idle one — and none that still has a pull
pending (a Redis key, set-if-absent with a TTL, held from queueing until the pull ends). Then it writes when
the agency is next due: its earliest sub-account, or never when it has nothing to pull.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q

from agencies.models import Agency
from agencies.services import agency_usage_pull_schedule
from phone.models import UsageLine
from phone.selectors import providers_to_pull
from rebill.tenancy import current_schema

IDLE_AFTER = timedelta(days=7)
# A pull still running at its hard time limit has freed its worker; the key outlives the task by no more.
PULL_TIME_LIMIT_SECONDS = 600


@dataclass(frozen=True)
class PullsDue:
    provider_ids: list[int]
    expires_seconds: int
    next_due_at: datetime | None


def pull_intervals() -> tuple[timedelta, timedelta]:
    return (timedelta(seconds=settings.USAGE_PULL_INTERVAL_SECONDS),
            timedelta(seconds=settings.USAGE_PULL_IDLE_INTERVAL_SECONDS))


def _pending_key(provider_id: int) -> str:
    return f"usage-pull-pending:{provider_id}"  # the cache prefixes it with the agency's schema


def usage_pull_pending_claim(*, provider_id: int) -> bool:
    """True for the one caller that may queue this provider's pull now (none is pending)."""
    active, _ = pull_intervals()
    ttl = int(active.total_seconds()) + PULL_TIME_LIMIT_SECONDS
    return bool(cache.add(_pending_key(provider_id), 1, timeout=ttl))


def usage_pull_pending_release(*, provider_id: int) -> None:
    cache.delete(_pending_key(provider_id))


def usage_pulls_due(*, now: datetime) -> PullsDue:
    """Claim this agency's sub-accounts whose pull is due and record when the agency is next due."""
    active_interval, idle_interval = pull_intervals()
    since = now - IDLE_AFTER
    recent_usage = UsageLine.objects.filter(subaccount_id=OuterRef("subaccount_id"), day__gte=since.date(),
                                            units__gt=0)
    providers = (providers_to_pull()
                 .annotate(busy=Exists(recent_usage) | Q(created_at__gte=since))
                 .values_list("pk", "last_pulled_at", "busy"))
    schema_name = current_schema()
    seen = Agency.objects.filter(schema_name=schema_name).values_list("usage_pull_due_at", flat=True).first()
    due: list[int] = []
    next_due_at: datetime | None = None
    for provider_id, last_pulled_at, busy in providers:
        interval = active_interval if busy else idle_interval
        at = now if last_pulled_at is None else last_pulled_at + interval
        if at <= now:
            if usage_pull_pending_claim(provider_id=provider_id):
                due.append(provider_id)
            at = now + interval  # queued (or pending): its next turn comes after one interval
        next_due_at = at if next_due_at is None else min(next_due_at, at)
    agency_usage_pull_schedule(schema_name=schema_name, due_at=next_due_at, seen=seen)
    return PullsDue(provider_ids=due, expires_seconds=int(active_interval.total_seconds()), next_due_at=next_due_at)
