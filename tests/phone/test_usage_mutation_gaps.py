"""phone/services/usage.py where the rest of the suite does not look: the daily re-read of retired accounts — running
out of time, the moment an account stops being re-read, an old Twilio token that no longer works, and the platform's
Twilio settings (timeout, retries, page size) that every read goes by."""

import logging
import time
from datetime import timedelta

import pytest
import time_machine
from django_tenants.utils import tenant_context

from devservices.fake_twilio import create_account, inject_fault, request_log
from phone.models import RetiredAccount, UsageLine
from phone.services import PullOutcome, PullResult, usage_pull_retired, usage_pull_retired_accounts
from subaccounts.models import SubAccount
from tests.phone.helpers import put_usage, today, usage, use_lc_phone, use_twilio

pytestmark = pytest.mark.django_db

YESTERDAY_UNITS = 10


def _retired_lc_accounts(world, twilio, count: int) -> list[RetiredAccount]:
    """`count` sub-accounts that each left an LC Phone account (with yesterday's usage on it) for their own Twilio."""
    subaccounts = list(world.a.subaccounts)
    subaccounts += [SubAccount.objects.create(name=f"Re-read client {n}") for n in range(count - len(subaccounts))]
    retired = []
    for n, subaccount in enumerate(subaccounts[:count]):
        lc_sid = use_lc_phone(subaccount=subaccount, admin=world.a.admin).lc_phone_account_sid
        put_usage(twilio.url, lc_sid, [usage("calls-outbound", today() - timedelta(days=1), YESTERDAY_UNITS + n)])
        use_twilio(twilio.url, subaccount=subaccount, admin=world.a.admin, name=f"own {n}")
        retired.append(RetiredAccount.objects.get(account_sid=lc_sid))
    return retired


def test_a_reread_of_retired_accounts_that_runs_out_of_time_stores_what_it_read_and_defers_the_rest(world, twilio):
    with tenant_context(world.a.agency):
        slow, second, third = _retired_lc_accounts(world, twilio, 3)
        # given Twilio takes longer to answer the first re-read than the batch has left
        inject_fault(twilio.url, slow.account_sid, "sleep", seconds=1.0)

        results = usage_pull_retired_accounts(retired_ids=[slow.pk, second.pk, third.pk],
                                              read_until=time.monotonic() + 0.5)

        # then the re-read that was started is stored, and the others are deferred without asking Twilio
        assert results == {slow.pk: PullResult(PullOutcome.STORED, records=1, changed=1),
                           second.pk: PullResult(PullOutcome.DEFERRED), third.pk: PullResult(PullOutcome.DEFERRED)}
        assert UsageLine.objects.get(account_sid=slow.account_sid).units == YESTERDAY_UNITS
        for deferred in (second, third):
            assert request_log(twilio.url, deferred.account_sid) == []
            assert not UsageLine.objects.filter(account_sid=deferred.account_sid).exists()


def test_a_retired_account_is_not_reread_from_the_moment_its_35_days_are_over(world, twilio):
    with tenant_context(world.a.agency):
        [retired] = _retired_lc_accounts(world, twilio, 1)
        # when the re-read runs at the very moment its last day of re-reading ends
        with time_machine.travel(retired.pull_until, tick=False):
            result = usage_pull_retired(retired_id=retired.pk)
        # then it is not read any more
        assert result == PullResult(PullOutcome.PROVIDER_GONE)
        assert request_log(twilio.url, retired.account_sid) == []


def test_an_old_twilio_account_whose_token_was_changed_since_is_left_alone_and_logged(world, twilio, caplog):
    with tenant_context(world.a.agency):
        # given a sub-account that left its own Twilio account for LC Phone, and the agency changed that token since
        subaccount = world.a.subaccounts[0]
        old, _ = use_twilio(twilio.url, subaccount=subaccount, admin=world.a.admin, name="old")
        use_lc_phone(subaccount=subaccount, admin=world.a.admin)
        create_account(twilio.url, old.twilio_account_sid, "n" * 32)
        [retired] = RetiredAccount.objects.all()
        # when the daily re-read reaches it
        with caplog.at_level(logging.WARNING, logger="phone.services.usage"):
            result = usage_pull_retired(retired_id=retired.pk)
    # then Twilio's refusal is the outcome, and the log names the account and the sub-account
    assert result == PullResult(PullOutcome.CREDENTIALS_REJECTED)
    assert [record.getMessage() for record in caplog.records if record.name == "phone.services.usage"] == [
        f"Retired account {old.twilio_account_sid} of sub-account {subaccount.pk}: credentials rejected; not re-read"]


def test_a_reread_gives_up_after_the_timeout_the_settings_allow(world, twilio, settings):
    with tenant_context(world.a.agency):
        [retired] = _retired_lc_accounts(world, twilio, 1)
        # given Twilio answers every attempt after 1 s, and the settings wait 0.3 s
        settings.TWILIO_TIMEOUT_SECONDS = 0.3
        inject_fault(twilio.url, retired.account_sid, "sleep", seconds=1.0, count=4)
        # then the re-read fails (tomorrow's retries), not waits
        assert usage_pull_retired(retired_id=retired.pk) == PullResult(PullOutcome.FETCH_FAILED)
        assert not UsageLine.objects.filter(account_sid=retired.account_sid).exists()


def test_a_reread_retries_as_often_as_the_settings_allow_and_no_more(world, twilio):
    with tenant_context(world.a.agency):
        [retired] = _retired_lc_accounts(world, twilio, 1)
        # given Twilio fails each of the 4 attempts the settings allow (a fifth would succeed)
        inject_fault(twilio.url, retired.account_sid, "status", status=500, count=4)
        assert usage_pull_retired(retired_id=retired.pk) == PullResult(PullOutcome.FETCH_FAILED)
        assert len(request_log(twilio.url, retired.account_sid)) == 4


def test_a_reread_asks_for_pages_of_the_size_the_settings_say(world, twilio, settings):
    settings.TWILIO_USAGE_PAGE_SIZE = 2
    with tenant_context(world.a.agency):
        [retired] = _retired_lc_accounts(world, twilio, 1)
        assert usage_pull_retired(retired_id=retired.pk).outcome == PullOutcome.STORED
    pages = request_log(twilio.url, retired.account_sid)
    assert pages and {page["query"].get("PageSize") for page in pages} == {"2"}
