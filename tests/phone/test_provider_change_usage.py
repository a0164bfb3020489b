"""A provider change loses nothing and leaks nothing: the LC Phone subaccount left behind is suspended,
and every account the sub-account used is still re-read for 35 days."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_tenants.utils import tenant_context

from devservices.fake_twilio import account_status, inject_fault
from phone.models import RetiredAccount, UsageLine
from phone.selectors import retired_accounts_to_pull
from phone.services import (
    PullOutcome,
    provider_set_lc_phone,
    usage_pull,
    usage_pull_retired,
    usage_pull_retired_accounts,
)
from phone.tasks import lc_phone_subaccount_suspend
from subaccounts.models import AuditEntry
from tests.phone.helpers import D, put_usage, today, usage, use_lc_phone, use_twilio

pytestmark = pytest.mark.django_db


def test_moving_from_lc_phone_to_twilio_suspends_the_lc_subaccount_and_a_return_resumes_it(
        world, twilio, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        lc = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        lc_sid = lc.lc_phone_account_sid
        # when the sub-account moves to the agency's Twilio: a suspension is queued once the move commits
        with django_capture_on_commit_callbacks() as callbacks:
            moved, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        assert len(callbacks) == 1
        assert account_status(twilio.url, lc_sid) == "active"
        # and the task (as the worker runs it) suspends the LC Phone subaccount at Twilio
        assert lc_phone_subaccount_suspend(moved.pk) is True
        assert account_status(twilio.url, lc_sid) == "suspended"
        assert lc_phone_subaccount_suspend(moved.pk) is True  # twice is harmless
        # and moving back resumes the same subaccount before the move is saved
        back = provider_set_lc_phone(subaccount=world.a.subaccounts[0], by=world.a.admin)
        assert back.lc_phone_account_sid == lc_sid and account_status(twilio.url, lc_sid) == "active"
        assert lc_phone_subaccount_suspend(back.pk) is False  # a late suspension leaves it alone
        assert account_status(twilio.url, lc_sid) == "active"
        actions = list(AuditEntry.objects.filter(subaccount=world.a.subaccounts[0]).order_by("pk")
                       .values_list("action", flat=True))
        assert actions.count("lc_phone_suspended") == 2 and "lc_phone_resumed" in actions
    with tenant_context(world.b.agency):
        assert not AuditEntry.objects.exists()


def test_moving_twilio_to_twilio_queues_no_suspension(world, twilio, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="one")
        with django_capture_on_commit_callbacks() as callbacks:
            use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="two")
        assert callbacks == []


def test_a_late_correction_on_the_old_lc_account_after_the_switch_is_stored(world, twilio):
    with tenant_context(world.a.agency):
        lc = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        lc_sid = lc.lc_phone_account_sid
        yesterday = today() - timedelta(days=1)
        put_usage(twilio.url, lc_sid, [usage("calls-outbound", yesterday, 100)])
        usage_pull(provider_id=lc.pk)
        # given the sub-account moved to its agency's Twilio
        moved, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        [retired] = RetiredAccount.objects.all()
        assert (retired.account_sid, retired.provider) == (lc_sid, "lc_phone")
        # when Twilio corrects the old account's day afterwards, and the daily re-read runs
        put_usage(twilio.url, lc_sid, [usage("calls-outbound", yesterday, 120)])
        usage_pull(provider_id=moved.pk, full_reread=True)  # the new account: knows nothing of it
        assert list(retired_accounts_to_pull(now=timezone.now())) == [retired]
        assert usage_pull_retired(retired_id=retired.pk).outcome == PullOutcome.STORED
        # then the correction is stored on the old account's line, priced by the price book
        line = UsageLine.objects.get(subaccount=moved.subaccount, account_sid=lc_sid, day=yesterday)
        assert (line.units, line.cost, line.revision, line.provider) == (120, D("1.992"), 2, "lc_phone")
    with tenant_context(world.b.agency):
        assert not UsageLine.objects.exists()


def test_an_old_twilio_account_is_read_with_its_kept_token_up_to_the_switch_day_only(world, twilio):
    with tenant_context(world.a.agency):
        old, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="old")
        old_sid = old.twilio_account_sid
        provider_set_lc_phone(subaccount=world.a.subaccounts[0], by=world.a.admin)
        [retired] = RetiredAccount.objects.all()
        assert retired.twilio_auth_token_encrypted == old.twilio_auth_token_encrypted
        put_usage(twilio.url, old_sid, [usage("sms-outbound-longcode", today() - timedelta(days=3), 9, "0.07"),
                                        usage("sms-outbound-longcode", today() + timedelta(days=1), 5, "0.04")])
        usage_pull_retired(retired_id=retired.pk)
        stored = {(line.day, line.cost) for line in UsageLine.objects.filter(account_sid=old_sid)}
        assert stored == {(today() - timedelta(days=3), D("0.07"))}  # not what the account did after the switch


def test_an_old_account_is_no_longer_read_35_days_after_the_switch_nor_once_it_is_current_again(world, twilio):
    with tenant_context(world.a.agency):
        lc = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        [retired] = RetiredAccount.objects.filter(account_sid=lc.lc_phone_account_sid)
        with time_machine.travel(timezone.now() + timedelta(days=36)):
            assert not retired_accounts_to_pull(now=timezone.now()).exists()
            assert usage_pull_retired(retired_id=retired.pk).outcome == PullOutcome.PROVIDER_GONE
        provider_set_lc_phone(subaccount=world.a.subaccounts[0], by=world.a.admin)
        assert list(RetiredAccount.objects.values_list("provider", flat=True)) == ["twilio"]


def test_the_daily_reread_of_retired_accounts_is_one_batch_where_one_unreadable_account_stops_no_other(world, twilio):
    with tenant_context(world.a.agency):
        # given two sub-accounts that each left an LC Phone account with usage on it for their agency's Twilio
        yesterday = today() - timedelta(days=1)
        retired_sids = []
        for n, subaccount in enumerate(world.a.subaccounts):
            lc = use_lc_phone(subaccount=subaccount, admin=world.a.admin)
            retired_sids.append(lc.lc_phone_account_sid)
            put_usage(twilio.url, lc.lc_phone_account_sid, [usage("calls-outbound", yesterday, 10 + n)])
            use_twilio(twilio.url, subaccount=subaccount, admin=world.a.admin, name=f"own {n}")
        unreadable, readable = (RetiredAccount.objects.get(account_sid=sid) for sid in retired_sids)
        # and Twilio failing on the first one, retries included
        inject_fault(twilio.url, unreadable.account_sid, "status", status=500, count=10)

        results = usage_pull_retired_accounts(retired_ids=[unreadable.pk, readable.pk])

        assert list(results) == [unreadable.pk, readable.pk]
        assert (results[unreadable.pk].outcome, results[readable.pk].outcome) == (
            PullOutcome.FETCH_FAILED, PullOutcome.STORED)
        assert not UsageLine.objects.filter(account_sid=unreadable.account_sid).exists()
        line = UsageLine.objects.get(account_sid=readable.account_sid, day=yesterday)
        assert (line.subaccount_id, line.units) == (readable.subaccount_id, 11)
