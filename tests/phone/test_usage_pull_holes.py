"""Bugs of the usage pull that the suite once missed: each test here fails when its bug is planted."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import tenant_context

from devservices.fake_twilio import clear_request_log, inject_fault, request_log
from phone.models import SubAccountProvider, UsageDelta, UsageLine
from phone.services import PullOutcome, usage_lines_store, usage_pull
from phone.usage_client import UsageRecord
from pricebook.services import lc_phone_price_add
from tests.phone.helpers import D, lines_of, put_usage, today, usage, use_lc_phone, use_twilio, window_days

pytestmark = pytest.mark.django_db


def test_a_record_repeated_on_two_pages_is_stored_once_at_its_value(world, twilio, settings):
    # given pages of 5 records, and Twilio repeating a page's last record at the start of the next page
    settings.TWILIO_USAGE_PAGE_SIZE = 5
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        account = provider.twilio_account_sid
        leaves = ["sms-outbound-longcode", "calls-outbound", "mms-outbound", "phonenumbers-local"]
        put_usage(twilio.url, account, [usage(cat, day, 10, "0.10") for day in window_days() for cat in leaves])
        inject_fault(twilio.url, account, "overlap", count=10)
        # when
        result = usage_pull(provider_id=provider.pk)
        # then every line holds its own value, not twice it
        assert result.outcome == PullOutcome.STORED
        lines = lines_of(provider)
        assert len(lines) == 12
        assert {(line.units, line.cost, line.revision) for line in lines.values()} == {(10, D("0.10"), 1)}
        assert UsageDelta.objects.filter(line__subaccount=provider.subaccount).count() == 12
    with tenant_context(world.b.agency):
        assert not UsageLine.objects.exists()


def test_the_fake_really_repeats_a_record_across_pages(twilio):
    from phone.usage_client import fetch_daily_usage
    from tests.phone.helpers import agency_twilio_account

    account, auth_token = agency_twilio_account(twilio.url, "paged")
    put_usage(twilio.url, account, [usage(cat, today(), 1) for cat in ["calls-outbound", "mms-outbound",
                                                                       "sms-outbound-longcode"]])
    inject_fault(twilio.url, account, "overlap", count=10)
    records = list(fetch_daily_usage(account_sid=account, auth_sid=account, auth_token=auth_token, start=today(),
                                     end=today(), base_url=twilio.url, page_size=4))
    categories = [record.category for record in records]
    assert len(categories) > len(set(categories)) == 3


def test_a_read_of_the_old_twilio_account_is_dropped_after_a_move_to_another_twilio_account(world, twilio):
    with tenant_context(world.a.agency):
        # given a pull started reading Twilio account AC1
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="one")
        first_sid = provider.twilio_account_sid
        stale = SubAccountProvider.objects.get(pk=provider.pk)
        # when an admin moves the sub-account to Twilio account AC2 before the pull stores what it read
        moved, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="two")
        assert moved.twilio_account_sid != first_sid
        read = UsageRecord(account_sid=first_sid, category="calls-outbound", product="calls", day=today(),
                           count=D(3), usage=D(3), usage_unit="minutes", price=D("0.05"), price_unit="usd")
        result = usage_lines_store(provider=stale, account_sid=first_sid, records=[read], fetched_at=timezone.now())
        # then the read is dropped
        assert result.outcome == PullOutcome.PROVIDER_CHANGED
        assert not UsageLine.objects.filter(subaccount=provider.subaccount).exists()


def test_after_a_provider_change_the_new_account_gets_its_own_line_even_with_equal_numbers(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="one")
        same_day = [usage("calls-outbound", today(), 7, "0.10")]
        put_usage(twilio.url, provider.twilio_account_sid, same_day)
        usage_pull(provider_id=provider.pk)
        # when the sub-account moves to another account whose day reads exactly the same
        moved, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="two")
        put_usage(twilio.url, moved.twilio_account_sid, same_day)
        usage_pull(provider_id=moved.pk)
        # then both accounts' usage is stored: the day cost 0.10 on each
        lines = UsageLine.objects.filter(subaccount=provider.subaccount, category="calls-outbound", day=today())
        assert {(line.account_sid, line.units, line.cost) for line in lines} == {
            (provider.twilio_account_sid, 7, D("0.10")), (moved.twilio_account_sid, 7, D("0.10"))}


def test_a_parent_and_its_finer_child_are_billed_at_one_level_only(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        # given Twilio reports mms-inbound (10 + 5) and its finer children mms-inbound-longcode / -tollfree
        put_usage(twilio.url, provider.twilio_account_sid, [
            usage("mms-inbound-longcode", today(), 10, "0.20"), usage("mms-inbound-tollfree", today(), 5, "0.10")])
        # when
        usage_pull(provider_id=provider.pk)
        # then the 15 messages and $0.30 are billed once, whatever product a level would map to
        lines = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert sum(line.units for line in lines) == 15
        assert sum(line.cost for line in lines) == D("0.30")
        assert {line.category for line in lines} == {"mms-inbound"}


def test_an_lc_phone_subaccount_create_that_times_out_on_the_read_is_sent_once(world, twilio, settings):
    # given Twilio takes longer to answer the create than our timeout (it may well have created it)
    settings.TWILIO_TIMEOUT_SECONDS = 0.3
    inject_fault(twilio.url, twilio.master_sid, "sleep", seconds=1.0, count=5)
    clear_request_log(twilio.url)
    with tenant_context(world.a.agency):
        # when
        with pytest.raises(ValidationError):
            use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        # then the POST was sent exactly once (a retry could create a second subaccount) and nothing was saved
        creates = [r for r in request_log(twilio.url) if r["method"] == "POST" and r["path"].endswith("/Accounts.json")]
        assert len(creates) == 1
        assert not SubAccountProvider.objects.exists()


def test_a_day_that_shrinks_after_a_price_rise_keeps_its_old_average_price(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        account = provider.lc_phone_account_sid
        put_usage(twilio.url, account, [usage("calls-outbound", today(), 100)])
        usage_pull(provider_id=provider.pk)  # 100 minutes x $0.0166
        # when the price is raised, then Twilio corrects the day down
        lc_phone_price_add(category="calls-outbound", unit="minute", unit_price=D("0.0500"), by=None)
        put_usage(twilio.url, account, [usage("calls-outbound", today(), 40)])
        usage_pull(provider_id=provider.pk)
        # then the 40 minutes left keep the price they were pulled at, not the new one
        [line] = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert (line.units, line.cost) == (40, D("0.664"))
        assert [d.cost_delta for d in UsageDelta.objects.filter(line=line).order_by("revision")] == [
            D("1.66"), D("-0.996")]


def test_an_older_read_never_overwrites_a_newer_read_that_changed_nothing(world, twilio):
    from datetime import timedelta

    def read(units: int) -> list[UsageRecord]:
        return [UsageRecord(account_sid=provider.twilio_account_sid, category="calls-outbound", product="calls",
                            day=today(), count=D(units), usage=D(units), usage_unit="minutes",
                            price=D(units) / 100, price_unit="usd")]

    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        t0 = timezone.now()
        t1, t2 = t0 + timedelta(seconds=1), t0 + timedelta(seconds=2)
        # given reads at t0 (0 minutes), t2 (still 0: the line is left as it is) stored in that order
        for units, fetched_at in ((0, t0), (0, t2)):
            usage_lines_store(provider=provider, account_sid=provider.twilio_account_sid, records=read(units),
                              fetched_at=fetched_at)
        # when a read taken at t1, in between, commits last with 5 minutes Twilio has since taken back
        usage_lines_store(provider=provider, account_sid=provider.twilio_account_sid, records=read(5),
                          fetched_at=t1)
        # then the newest read (t2) stands
        [line] = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert (line.units, line.cost, line.revision) == (0, 0, 1)
        assert UsageDelta.objects.filter(line=line).count() == 1
