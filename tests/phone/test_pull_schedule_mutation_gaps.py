"""phone/services/pull_schedule.py's busy/idle decision where the rest of the suite does not look: usage older than
a week, or a line with no units, does not make an account busy; and the agency's next visit is written down."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.models import Agency
from phone.models import SubAccountProvider, UsageLine
from phone.services.pull_schedule import usage_pulls_due

pytestmark = pytest.mark.django_db


def _provider(subaccount, *, sid: str, now) -> SubAccountProvider:
    """An account set up a month ago, last pulled 10 minutes ago."""
    provider = SubAccountProvider.objects.create(subaccount=subaccount, provider="lc_phone", lc_phone_account_sid=sid)
    SubAccountProvider.objects.filter(pk=provider.pk).update(created_at=now - timedelta(days=30),
                                                             last_pulled_at=now - timedelta(minutes=10))
    provider.refresh_from_db()
    return provider


def _line(provider: SubAccountProvider, *, days_ago: int, units: str, now) -> None:
    UsageLine.objects.create(
        subaccount=provider.subaccount, provider="lc_phone", account_sid=provider.account_sid,
        category="sms-outbound", day=(now - timedelta(days=days_ago)).date(), product="sms", usage_unit="segments",
        count=Decimal(units), units=Decimal(units), twilio_price=Decimal(0), cost=Decimal(0), fetched_at=now,
        created_at=now, updated_at=now)


def test_old_usage_or_a_line_without_units_leaves_an_account_idle(world):
    now = timezone.now()
    with tenant_context(world.a.agency):
        # given one account whose last usage is 8 days old, and one whose only line this week has no units
        old_usage = _provider(world.a.subaccounts[0], sid="AC" + "c" * 32, now=now)
        _line(old_usage, days_ago=8, units="5", now=now)
        no_units = _provider(world.a.subaccounts[1], sid="AC" + "d" * 32, now=now)
        _line(no_units, days_ago=1, units="0", now=now)
        # when the tick runs 10 minutes after their last pull (past the busy interval, not the idle one)
        due = usage_pulls_due(now=now)
    # then neither is due: both are idle, and the agency is next visited when the first idle interval ends
    assert due.provider_ids == []
    next_visit = old_usage.last_pulled_at + timedelta(seconds=settings.USAGE_PULL_IDLE_INTERVAL_SECONDS)
    assert due.next_due_at == next_visit
    assert Agency.objects.get(pk=world.a.agency.pk).usage_pull_due_at == next_visit
