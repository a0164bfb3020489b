"""phone/services/usage.py where the rest of the suite does not look: the daily re-read of retired accounts — running
out of time, the moment an account stops being re-read, an old Twilio token that no longer works, another currency,
and the platform's Twilio settings (timeout, retries, page size) that every read goes by; the batch pull's window
and its failures; a stored read that does not move last_pulled_at on."""

import logging
import time
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.utils import timezone
from django_tenants.utils import tenant_context

from devservices.fake_twilio import create_account, inject_fault, request_log
from phone.models import ProviderStatus, RetiredAccount, SubAccountProvider, UsageLine
from phone.services import (
    PullOutcome,
    PullResult,
    usage_lines_store,
    usage_pull,
    usage_pull_retired,
    usage_pull_retired_accounts,
    usage_pulls,
)
from phone.usage_client import CredentialsInvalid, UsageFetchError, UsageRecord
from subaccounts.models import SubAccount
from tests.phone.helpers import D, lines_of, put_usage, today, token, usage, use_lc_phone, use_twilio

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


def test_a_reread_retries_as_often_as_the_settings_allow_and_no_more(world, twilio, caplog):
    with tenant_context(world.a.agency):
        [retired] = _retired_lc_accounts(world, twilio, 1)
        # given Twilio fails each of the 4 attempts the settings allow (a fifth would succeed)
        inject_fault(twilio.url, retired.account_sid, "status", status=500, count=4)
        with caplog.at_level(logging.WARNING, logger="phone.services.usage"):
            assert usage_pull_retired(retired_id=retired.pk) == PullResult(PullOutcome.FETCH_FAILED)
        assert len(request_log(twilio.url, retired.account_sid)) == 4
    # and the log names the retired account and what failed
    assert [record.getMessage() for record in caplog.records if record.name == "phone.services.usage"] == [
        f"Usage pull of retired account {retired.pk} failed: usage of {retired.account_sid}: Twilio answered 500 "
        "(code 20500): Internal Server Error"]


def test_a_reread_asks_for_pages_of_the_size_the_settings_say(world, twilio, settings):
    settings.TWILIO_USAGE_PAGE_SIZE = 2
    with tenant_context(world.a.agency):
        [retired] = _retired_lc_accounts(world, twilio, 1)
        assert usage_pull_retired(retired_id=retired.pk).outcome == PullOutcome.STORED
    pages = request_log(twilio.url, retired.account_sid)
    assert pages and {page["query"].get("PageSize") for page in pages} == {"2"}


def test_an_old_twilio_account_billed_in_another_currency_since_is_not_stored(world, twilio, caplog):
    with tenant_context(world.a.agency):
        # given a sub-account that left its own Twilio account for LC Phone, and that account is now billed in EUR
        subaccount = world.a.subaccounts[0]
        old, _ = use_twilio(twilio.url, subaccount=subaccount, admin=world.a.admin, name="old")
        use_lc_phone(subaccount=subaccount, admin=world.a.admin)
        create_account(twilio.url, old.twilio_account_sid, token("old"), currency="eur")
        put_usage(twilio.url, old.twilio_account_sid, [usage("calls-outbound", today() - timedelta(days=1), 4),
                                                       usage("sms-outbound-longcode", today(), 2)])
        [retired] = RetiredAccount.objects.all()
        # when the daily re-read reaches it
        with caplog.at_level(logging.ERROR, logger="phone.services.usage"):
            result = usage_pull_retired(retired_id=retired.pk)
        # then nothing is stored as if it were USD, and the platform's log says which account
        assert result == PullResult(PullOutcome.CURRENCY_REFUSED, records=2)
        assert not UsageLine.objects.filter(account_sid=old.twilio_account_sid).exists()
    assert [record.getMessage() for record in caplog.records if record.name == "phone.services.usage"] == [
        f"Retired account {old.twilio_account_sid} is not billed in USD; not stored"]


def test_no_read_starts_once_the_batchs_time_is_up_to_the_moment(world, twilio):
    with tenant_context(world.a.agency):
        [retired] = _retired_lc_accounts(world, twilio, 1)
        provider = use_lc_phone(subaccount=world.a.subaccounts[1], admin=world.a.admin)
        # when a batch is asked to read at the very moment its time is up
        with mock.patch.object(time, "monotonic", return_value=1000.0):
            pulls = usage_pulls(provider_ids=[provider.pk], read_until=1000.0)
            rereads = usage_pull_retired_accounts(retired_ids=[retired.pk], read_until=1000.0)
    # then nothing is read: both are left to the next run
    assert pulls == {provider.pk: PullResult(PullOutcome.DEFERRED)}
    assert rereads == {retired.pk: PullResult(PullOutcome.DEFERRED)}
    assert request_log(twilio.url, provider.account_sid) == request_log(twilio.url, retired.account_sid) == []


def test_a_stored_read_that_does_not_cover_every_day_since_the_last_pull_leaves_last_pulled_at(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        record = UsageRecord(account_sid=provider.account_sid, category="calls-outbound", product="calls",
                             day=today(), count=D(3), usage=D(3), usage_unit="minutes", price=D("0.03"),
                             price_unit="usd")
        result = usage_lines_store(provider=provider, account_sid=provider.account_sid, records=[record],
                                   fetched_at=timezone.now(), mark_pulled=False)
        assert (result.outcome, result.changed) == (PullOutcome.STORED, 1)
        assert SubAccountProvider.objects.get(pk=provider.pk).last_pulled_at is None


def test_a_batch_pull_reads_the_last_three_days_and_the_daily_reread_all_35(world, twilio):
    days_ago = {n: today() - timedelta(days=n) for n in (0, 2, 3, 34)}
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        put_usage(twilio.url, provider.account_sid, [usage("calls-outbound", day, 5) for day in days_ago.values()])
        # when the beat's batch pull runs for a sub-account never pulled before: today and the two days before
        assert usage_pulls(provider_ids=[provider.pk])[provider.pk].changed == 2
        assert set(lines_of(provider)) == {("calls-outbound", days_ago[n]) for n in (0, 2)}
        # and when the daily re-read runs: all 35 days
        assert usage_pulls(provider_ids=[provider.pk], full_reread=True)[provider.pk].changed == 2
        assert set(lines_of(provider)) == {("calls-outbound", day) for day in days_ago.values()}


def test_a_batch_pull_that_cannot_read_one_sub_account_stores_the_others_and_logs_it(world, twilio, caplog):
    with tenant_context(world.a.agency):
        failing, other_failing, readable = (use_lc_phone(subaccount=subaccount, admin=world.a.admin) for subaccount
                                            in [*world.a.subaccounts[:2], SubAccount.objects.create(name="Third")])
        put_usage(twilio.url, readable.account_sid, [usage("calls-outbound", today(), 5)])
        # given Twilio fails every attempt at the first two sub-accounts
        for provider in (failing, other_failing):
            inject_fault(twilio.url, provider.account_sid, "status", status=500, count=4)
        with caplog.at_level(logging.WARNING, logger="phone.services.usage"):
            results = usage_pulls(provider_ids=[failing.pk, other_failing.pk, readable.pk])
        # then those two failed, the third is stored, and the log names each failed one and why
        assert results == {failing.pk: PullResult(PullOutcome.FETCH_FAILED),
                           other_failing.pk: PullResult(PullOutcome.FETCH_FAILED),
                           readable.pk: PullResult(PullOutcome.STORED, records=1, changed=1)}
        assert set(lines_of(readable)) == {("calls-outbound", today())}
    assert [record.getMessage() for record in caplog.records if record.name == "phone.services.usage"] == [
        f"Usage pull of provider {provider.pk} failed: usage of {provider.account_sid}: Twilio answered 500 "
        "(code 20500): Internal Server Error" for provider in (failing, other_failing)]


def test_a_pull_given_a_start_without_an_end_reads_its_usual_window(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        ten_days_ago = today() - timedelta(days=10)
        put_usage(twilio.url, provider.account_sid, [usage("calls-outbound", ten_days_ago, 5),
                                                     usage("calls-outbound", today(), 5)])
        assert usage_pull(provider_id=provider.pk, start=ten_days_ago).outcome == PullOutcome.STORED
        assert set(lines_of(provider)) == {("calls-outbound", today())}


def test_a_pull_gives_up_after_the_timeout_the_settings_allow(world, twilio, settings):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        put_usage(twilio.url, provider.account_sid, [usage("calls-outbound", today(), 5)])
        # given Twilio answers every attempt after 1 s, and the settings wait 0.3 s
        settings.TWILIO_TIMEOUT_SECONDS = 0.3
        inject_fault(twilio.url, provider.account_sid, "sleep", seconds=1.0, count=4)
        with pytest.raises(UsageFetchError):
            usage_pull(provider_id=provider.pk)
        assert lines_of(provider) == {}


def test_lc_phone_master_credentials_rejected_fail_the_pull_and_say_so_to_the_agency_and_the_platform(
        world, twilio, caplog):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        # given the platform's master token was changed at Twilio, not in the settings
        create_account(twilio.url, twilio.master_sid, "z" * 32)
        with caplog.at_level(logging.ERROR, logger="phone.services.usage"), \
                pytest.raises(CredentialsInvalid) as raised:
            usage_pull(provider_id=provider.pk)
        # then the agency sees the platform is on it (the provider stays active), and the platform's log says why
        stored = SubAccountProvider.objects.get(pk=provider.pk)
        assert (stored.status, stored.last_error) == (
            ProviderStatus.ACTIVE, "LC Phone usage could not be read; the platform is on it.")
    assert [record.getMessage() for record in caplog.records if record.name == "phone.services.usage"] == [
        f"LC Phone master credentials rejected reading sub-account {provider.subaccount_id}: {raised.value}"]


def test_an_account_now_billed_in_another_currency_is_not_stored_and_says_which(world, twilio, caplog):
    with tenant_context(world.a.agency):
        provider, auth_token = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin,
                                          name="own")
        create_account(twilio.url, provider.twilio_account_sid, auth_token, currency="gbp")
        put_usage(twilio.url, provider.twilio_account_sid, [usage("calls-outbound", today(), 5),
                                                            usage("sms-outbound-longcode", today(), 2)])
        with caplog.at_level(logging.ERROR, logger="phone.services.usage"):
            assert usage_pull(provider_id=provider.pk) == PullResult(PullOutcome.CURRENCY_REFUSED, records=2)
        reason = "This Twilio account is billed in GBP; only USD accounts can be rebilled. Nothing was stored."
        assert SubAccountProvider.objects.get(pk=provider.pk).last_error == reason
        assert lines_of(provider) == {}
    assert [record.getMessage() for record in caplog.records if record.name == "phone.services.usage"] == [
        f"Sub-account {provider.subaccount_id}: {reason}"]
