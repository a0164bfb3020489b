"""No usage older than the rolling window is lost: pulls reach back to the last successful pull, and a
daily re-read stores late corrections."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_tenants.utils import tenant_context

from devservices.fake_twilio import clear_request_log, create_account, request_log
from phone.models import ProviderStatus, SubAccountProvider, UsageLine
from phone.services import PullOutcome, provider_set_twilio, usage_pull, usage_window
from tests.phone.helpers import D, lines_of, put_usage, today, usage, use_lc_phone, use_twilio

pytestmark = pytest.mark.django_db


def daily_queries(url: str, account_sid: str) -> list[dict]:
    return [r["query"] for r in request_log(url, account_sid) if r["path"].endswith("Daily.json")]


def test_the_window_reaches_back_to_the_last_successful_pull_capped_at_35_days():
    now = timezone.now()
    day = now.date()
    assert usage_window(now=now) == (day - timedelta(days=2), day)
    assert usage_window(now=now, last_pulled_at=now - timedelta(hours=1)) == (day - timedelta(days=2), day)
    assert usage_window(now=now, last_pulled_at=now - timedelta(days=6)) == (day - timedelta(days=6), day)
    assert usage_window(now=now, last_pulled_at=now - timedelta(days=90)) == (day - timedelta(days=34), day)
    assert usage_window(now=now, full_reread=True) == (day - timedelta(days=34), day)


def test_credentials_invalid_for_six_days_then_fixed_the_missing_days_are_stored(world, twilio,
                                                                                 django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        provider, auth_token = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin,
                                          name="own")
        account = provider.twilio_account_sid
        days = [today() - timedelta(days=back) for back in range(8, -1, -1)]
        put_usage(twilio.url, account, [usage("calls-outbound", day, 5, "0.07") for day in days])
        # given a successful pull 7 days ago, then the agency rotated its token: 401s for 6 days
        with time_machine.travel(timezone.now() - timedelta(days=7)):
            assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.STORED
        rotated = "r" * 32
        create_account(twilio.url, account, rotated)  # (a new account in the fake: its usage again)
        put_usage(twilio.url, account, [usage("calls-outbound", day, 5, "0.07") for day in days])
        with time_machine.travel(timezone.now() - timedelta(days=6)):
            assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.CREDENTIALS_REJECTED
        provider.refresh_from_db()
        assert provider.status == ProviderStatus.CREDENTIALS_INVALID
        # when an admin enters the new token: a pull is queued at once
        with django_capture_on_commit_callbacks() as callbacks:
            provider_set_twilio(subaccount=provider.subaccount, account_sid=account, auth_token=rotated,
                                by=world.a.admin)
        assert len(callbacks) == 1
        # and that pull reads and stores every day since the last successful one
        clear_request_log(twilio.url)
        assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.STORED
        [query] = daily_queries(twilio.url, account)
        assert query["StartDate"] == (today() - timedelta(days=7)).isoformat()
        assert {day for (_, day) in lines_of(provider)} == set(days)  # the 6 missing days included
    with tenant_context(world.b.agency):
        assert not UsageLine.objects.exists()


def test_saving_working_credentials_again_queues_no_pull(world, twilio, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        with django_capture_on_commit_callbacks() as callbacks:
            use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        assert callbacks == []


def test_the_daily_reread_stores_a_correction_ten_days_back(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        account = provider.lc_phone_account_sid
        old_day = today() - timedelta(days=10)
        put_usage(twilio.url, account, [usage("calls-outbound", old_day, 40)])
        usage_pull(provider_id=provider.pk, start=old_day, end=today())
        # given Twilio corrects that day down after it left the rolling window
        put_usage(twilio.url, account, [usage("calls-outbound", old_day, 30)])
        usage_pull(provider_id=provider.pk)
        assert lines_of(provider)[("calls-outbound", old_day)].units == 40  # the 5-minute pull does not see it
        # when the daily re-read runs
        clear_request_log(twilio.url)
        usage_pull(provider_id=provider.pk, full_reread=True)
        # then
        [query] = daily_queries(twilio.url, account)
        assert query["StartDate"] == (today() - timedelta(days=34)).isoformat()
        line = lines_of(provider)[("calls-outbound", old_day)]
        assert (line.units, line.revision) == (30, 2)
        assert line.cost == D("0.498")  # 30 of the 40 minutes at $0.0166


def test_a_backfill_of_old_days_does_not_move_the_last_pull_on(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        with time_machine.travel(timezone.now() - timedelta(days=6)):
            usage_pull(provider_id=provider.pk)
        provider.refresh_from_db()
        last = provider.last_pulled_at
        usage_pull(provider_id=provider.pk, start=today() - timedelta(days=20), end=today() - timedelta(days=15))
        assert SubAccountProvider.objects.get(pk=provider.pk).last_pulled_at == last


def test_last_pulled_at_never_goes_backwards(world, twilio):
    from phone.services import usage_lines_store

    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        late, early = timezone.now(), timezone.now() - timedelta(minutes=5)
        for fetched_at in (late, early):  # two pulls committing out of order
            usage_lines_store(provider=provider, account_sid=provider.lc_phone_account_sid, records=[],
                              fetched_at=fetched_at)
        assert SubAccountProvider.objects.get(pk=provider.pk).last_pulled_at == late
