"""Beat's usage tick costs what changed: agencies and sub-accounts with nothing due are not visited, a pending
pull is never queued twice, idle accounts are pulled hourly."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.models import Agency
from agencies.services import agencies_usage_pull_claim
from phone.models import SubAccountProvider, UsageLine
from phone.services.pull_schedule import usage_pulls_due
from phone.tasks import usage_pull_agency, usage_pull_subaccount
from tests.phone.helpers import use_lc_phone

pytestmark = pytest.mark.django_db


def tick(agency, django_capture_on_commit_callbacks) -> list:
    """The agency's tick as a worker runs it; returns what it queued (sent on commit), without sending it."""
    with tenant_context(agency), django_capture_on_commit_callbacks() as queued:
        usage_pull_agency()
    return queued


def test_a_tick_does_not_queue_a_second_pull_for_a_pending_sub_account(world, twilio,
                                                                         django_capture_on_commit_callbacks):
    # given two LC Phone sub-accounts in alpha and one in bravo, never pulled
    with tenant_context(world.a.agency):
        first = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        second = use_lc_phone(subaccount=world.a.subaccounts[1], admin=world.a.admin)
    with tenant_context(world.b.agency):
        use_lc_phone(subaccount=world.b.subaccounts[0], admin=world.b.admin)

    # when alpha's tick runs twice before any pull has run
    queued_first = tick(world.a.agency, django_capture_on_commit_callbacks)
    queued_again = tick(world.a.agency, django_capture_on_commit_callbacks)

    # then the first queued both pulls in one batch, expiring after one interval, and the second queued nothing
    assert [callback.args[0] for callback in queued_first] == [([first.pk, second.pk],)]
    assert {callback.keywords["expires"] for callback in queued_first} == {settings.USAGE_PULL_INTERVAL_SECONDS}
    assert queued_again == []
    # and bravo's pending pulls are its own: its tick still queues its sub-account
    assert len(tick(world.b.agency, django_capture_on_commit_callbacks)) == 1

    # when one pull has run, once its interval has passed it may be queued again; the other is still pending
    with tenant_context(world.a.agency):
        assert usage_pull_subaccount(first.pk) != "failed"
        due = usage_pulls_due(now=timezone.now() + timedelta(seconds=settings.USAGE_PULL_INTERVAL_SECONDS + 1))
    assert due.provider_ids == [first.pk]


def _provider(subaccount, *, sid: str, age: timedelta, last_pulled: timedelta) -> SubAccountProvider:
    now = timezone.now()
    provider = SubAccountProvider.objects.create(subaccount=subaccount, provider="lc_phone", lc_phone_account_sid=sid)
    SubAccountProvider.objects.filter(pk=provider.pk).update(created_at=now - age, last_pulled_at=now - last_pulled)
    return provider


def test_idle_accounts_are_pulled_hourly_and_busy_ones_every_interval(world):
    now = timezone.now()
    with tenant_context(world.a.agency):
        # given two accounts set up long ago, both last pulled 10 minutes ago; only one had usage this week
        busy = _provider(world.a.subaccounts[0], sid="AC" + "b" * 32, age=timedelta(days=30),
                         last_pulled=timedelta(minutes=10))
        idle = _provider(world.a.subaccounts[1], sid="AC" + "i" * 32, age=timedelta(days=30),
                         last_pulled=timedelta(minutes=10))
        UsageLine.objects.create(
            subaccount=busy.subaccount, provider="lc_phone", account_sid=busy.account_sid, category="sms-outbound",
            day=(now - timedelta(days=3)).date(), product="sms", usage_unit="segments", count=Decimal(1),
            units=Decimal(1), twilio_price=Decimal(0), cost=Decimal("0.01"), fetched_at=now, created_at=now,
            updated_at=now)
        # when the tick runs
        due = usage_pulls_due(now=now)
        # then only the busy one is due; the agency comes back when the busy one is, before the idle one
        assert due.provider_ids == [busy.pk]
        assert due.next_due_at == now + timedelta(seconds=settings.USAGE_PULL_INTERVAL_SECONDS)
        # and an hour after its last pull the idle one is due too
        later = now + timedelta(seconds=settings.USAGE_PULL_IDLE_INTERVAL_SECONDS) - timedelta(minutes=9)
        assert usage_pulls_due(now=later - timedelta(minutes=2)).provider_ids == []
        assert usage_pulls_due(now=later).provider_ids == [idle.pk]


def claim(now) -> list[str]:
    return agencies_usage_pull_claim(now=now, lease=timedelta(seconds=settings.USAGE_PULL_INTERVAL_SECONDS))


def test_agencies_with_nothing_due_are_not_visited(world, twilio, django_capture_on_commit_callbacks):
    now = timezone.now()
    alpha, bravo = world.a.agency, world.b.agency
    # given alpha is due and bravo is not (nothing to pull)
    Agency.objects.filter(pk=alpha.pk).update(usage_pull_due_at=now - timedelta(seconds=1))
    Agency.objects.filter(pk=bravo.pk).update(usage_pull_due_at=None)
    # then beat's tick visits alpha only, and the next tick does not visit it again while its task is queued
    assert claim(now) == [alpha.schema_name]
    assert claim(now + timedelta(seconds=59)) == []
    # when alpha's visit finds nothing to pull, alpha is not visited again, even after the lease
    assert tick(alpha, django_capture_on_commit_callbacks) == []
    assert Agency.objects.get(pk=alpha.pk).usage_pull_due_at is None
    assert claim(now + timedelta(days=1)) == []
    # and a sub-account set up in bravo brings bravo to beat's next tick, and its first pull is queued
    with tenant_context(bravo):
        use_lc_phone(subaccount=world.b.subaccounts[0], admin=world.b.admin)
    assert claim(timezone.now()) == [bravo.schema_name]
    assert len(tick(bravo, django_capture_on_commit_callbacks)) == 1


def test_an_agency_whose_task_never_ran_is_visited_again_after_its_lease(world):
    now = timezone.now()
    Agency.objects.filter(pk=world.a.agency.pk).update(usage_pull_due_at=now)
    Agency.objects.filter(pk=world.b.agency.pk).update(usage_pull_due_at=None)
    assert claim(now) == [world.a.agency.schema_name]
    assert claim(now + timedelta(seconds=settings.USAGE_PULL_INTERVAL_SECONDS)) == [world.a.agency.schema_name]


def test_the_tick_visits_the_due_agencies_in_chunks_each_in_its_own_schema(world, twilio,
                                                                         django_capture_on_commit_callbacks):
    from agencies.tasks import usage_pull_agencies

    # given a due sub-account in each agency
    with tenant_context(world.a.agency):
        alpha = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
    with tenant_context(world.b.agency):
        use_lc_phone(subaccount=world.b.subaccounts[0], admin=world.b.admin)
    # when a chunk holding only alpha runs in public
    with django_capture_on_commit_callbacks() as queued:
        assert usage_pull_agencies([world.a.agency.schema_name]) == 1
    # then alpha's sub-account is queued, bravo's is not
    assert [callback.args[0] for callback in queued] == [([alpha.pk],)]
