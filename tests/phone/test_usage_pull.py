"""The usage pull over real HTTP against the fake Twilio, with the real twilio SDK."""

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from django_tenants.utils import tenant_context

from devservices.fake_twilio import PARENTS, clear_request_log, inject_fault, request_log
from phone.models import ProviderStatus, UsageLine
from phone.selectors import providers_to_pull
from phone.services import PullOutcome, provider_set_twilio, usage_pull
from phone.usage_client import UsageFetchError
from pricebook.models import LcPhonePrice
from pricebook.services import lc_phone_price_add
from tests.phone.helpers import D, lines_of, put_usage, today, usage, use_lc_phone, use_twilio, window_days

pytestmark = pytest.mark.django_db

DAILY_PATH = "/Usage/Records/Daily.json"


def daily_requests(url: str, account_sid: str) -> list[dict]:
    return [r for r in request_log(url, account_sid) if r["path"].endswith(DAILY_PATH)]


def test_every_page_is_read_and_each_record_stored_once(world, twilio, settings):
    # given 3 days x 4 leaves (+ their parents) and pages of 7 records: at least 3 pages
    settings.TWILIO_USAGE_PAGE_SIZE = 7
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        leaves = ["sms-outbound-longcode", "sms-inbound-longcode", "calls-outbound", "mms-outbound"]
        put_usage(twilio.url, provider.twilio_account_sid,
                  [usage(cat, day, 10 + i, f"0.{i + 1}") for day in window_days() for i, cat in enumerate(leaves)])
        clear_request_log(twilio.url)
        # when
        result = usage_pull(provider_id=provider.pk)
        # then
        assert len(daily_requests(twilio.url, provider.twilio_account_sid)) >= 3
        assert result.outcome == PullOutcome.STORED and result.records == 12
        lines = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert lines.count() == 12
        assert {(line.category, line.day) for line in lines} == {(c, d) for d in window_days() for c in leaves}
        assert all(line.revision == 1 for line in lines)


def test_parent_categories_are_never_counted(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        put_usage(twilio.url, provider.twilio_account_sid, [
            usage("sms-outbound-longcode", today(), 100, "0.79"),
            usage("sms-inbound-longcode", today(), 50, "0.395"),
        ])
        usage_pull(provider_id=provider.pk)
        lines = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert not lines.filter(category__in=list(PARENTS)).exists()
        sms = lines.filter(product="sms")
        assert sum(line.units for line in sms) == 150  # not 300 (sms) or 450 (sms + sms-outbound + ...)
        assert sum(line.cost for line in sms) == D("1.185")


def test_twilio_cost_is_twilios_price_and_lc_phone_cost_is_the_price_book(world, twilio):
    with tenant_context(world.a.agency):
        twilio_provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin,
                                        name="own")
        lc_provider = use_lc_phone(subaccount=world.a.subaccounts[1], admin=world.a.admin)
        records = [usage("sms-outbound-longcode", today(), 1000, "7.90"),
                   usage("calls-outbound", today(), 30, "0.42", count=12),
                   usage("phonenumbers-local", today(), 2, "2.30"),
                   usage("sms-messages-carrierfees", today(), 1000, "3.00")]
        put_usage(twilio.url, twilio_provider.twilio_account_sid, records)
        put_usage(twilio.url, lc_provider.lc_phone_account_sid, records)
        usage_pull(provider_id=twilio_provider.pk)
        usage_pull(provider_id=lc_provider.pk)

        own = lines_of(twilio_provider)
        assert {cat: line.cost for (cat, _), line in own.items()} == {
            "sms-outbound-longcode": D("7.90"), "calls-outbound": D("0.42"), "phonenumbers-local": D("2.30"),
            "sms-messages-carrierfees": D("3.00")}
        lc = lines_of(lc_provider)
        assert {cat: line.cost for (cat, _), line in lc.items()} == {
            "sms-outbound-longcode": D("8.3"),  # 1000 segments x $0.0083
            "calls-outbound": D("0.498"),  # 30 minutes (not 12 calls) x $0.0166
            "phonenumbers-local": D("2.30"),  # 2 numbers x $1.15
            "sms-messages-carrierfees": D("3.00"),  # not in the price book: Twilio's price, passed through
        }
        assert lc[("calls-outbound", today())].count == 12 and lc[("calls-outbound", today())].units == 30
        assert all(isinstance(line.cost, Decimal) for line in lc.values())
        assert {line.product for line in lc.values()} == {"sms", "calls", "phone_numbers", "other"}


def test_a_day_that_grows_updates_its_line_and_prices_new_units_at_the_current_price(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        account = provider.lc_phone_account_sid
        put_usage(twilio.url, account, [usage("sms-outbound-longcode", today(), 100, "0.79")])
        usage_pull(provider_id=provider.pk)
        [line] = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert (line.units, line.cost, line.revision) == (100, D("0.83"), 1)

        # a pull that finds nothing new leaves the line as it is
        usage_pull(provider_id=provider.pk)
        line.refresh_from_db()
        assert line.revision == 1

        # when platform staff raise the price, then the day grows
        lc_phone_price_add(category="sms-outbound-longcode", unit="segment", unit_price=D("0.0100"), by=None)
        put_usage(twilio.url, account, [usage("sms-outbound-longcode", today(), 150, "1.185")])
        usage_pull(provider_id=provider.pk)

        # then the same line holds the new total: 100 at the old price, the 50 new ones at the new price
        [line] = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert (line.units, line.cost, line.revision) == (150, D("0.83") + D("0.50"), 2)
        assert line.twilio_price == D("1.185") and line.unit_price == D("0.01")
        assert line.billed_cost == 0  # billing is the wallet's business


def test_a_day_that_shrinks_keeps_its_average_price(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        account = provider.lc_phone_account_sid
        put_usage(twilio.url, account, [usage("calls-outbound", today(), 100)])
        usage_pull(provider_id=provider.pk)
        put_usage(twilio.url, account, [usage("calls-outbound", today(), 40)])
        usage_pull(provider_id=provider.pk)
        [line] = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert (line.units, line.cost, line.revision) == (40, D("0.664"), 2)


def test_price_book_changes_do_not_reprice_units_already_pulled(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        put_usage(twilio.url, provider.lc_phone_account_sid, [usage("mms-outbound", today(), 10)])
        usage_pull(provider_id=provider.pk)
        lc_phone_price_add(category="mms-outbound", unit="message", unit_price=D("0.5"), by=None)
        usage_pull(provider_id=provider.pk)
        [line] = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert (line.cost, line.revision) == (D("0.22"), 1)


def test_the_rolling_window_is_three_utc_days(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        old_day = today() - timedelta(days=3)
        put_usage(twilio.url, provider.twilio_account_sid,
                  [usage("calls-outbound", day, 5) for day in [old_day, *window_days()]])
        clear_request_log(twilio.url)
        with time_machine.travel(timezone.now(), tick=True):
            usage_pull(provider_id=provider.pk)
        [query] = [r["query"] for r in daily_requests(twilio.url, provider.twilio_account_sid)]
        assert (query["StartDate"], query["EndDate"]) == (window_days()[0].isoformat(), today().isoformat())
        assert set(lines_of(provider)) == {("calls-outbound", day) for day in window_days()}


def test_401_marks_credentials_invalid_and_stops_pulls_until_fixed(world, twilio):
    from devservices.fake_twilio import create_account

    with tenant_context(world.a.agency):
        provider, auth_token = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin,
                                          name="own")
        # given the agency rotated its token in Twilio
        rotated = "r" * 32
        create_account(twilio.url, provider.twilio_account_sid, rotated)
        # when a pull runs
        assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.CREDENTIALS_REJECTED
        # then
        provider.refresh_from_db()
        assert provider.status == ProviderStatus.CREDENTIALS_INVALID
        assert "rejected" in provider.last_error
        assert provider not in providers_to_pull()
        clear_request_log(twilio.url)
        assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.SKIPPED_CREDENTIALS_INVALID
        assert request_log(twilio.url) == []
        # and once an admin enters the new token, pulls resume
        provider_set_twilio(subaccount=provider.subaccount, account_sid=provider.twilio_account_sid,
                            auth_token=rotated, by=world.a.admin)
        provider.refresh_from_db()
        assert provider.status == ProviderStatus.ACTIVE and provider.last_error == ""
        assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.STORED


def test_rate_limits_and_server_errors_are_retried(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        put_usage(twilio.url, provider.twilio_account_sid, [usage("calls-outbound", today(), 5)])
        inject_fault(twilio.url, provider.twilio_account_sid, "status", status=429, retry_after=0)
        inject_fault(twilio.url, provider.twilio_account_sid, "status", status=503)
        assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.STORED
        assert set(lines_of(provider)) == {("calls-outbound", today())}


def test_a_malformed_record_is_skipped_and_logged_and_the_rest_is_stored(world, twilio, caplog):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        put_usage(twilio.url, provider.twilio_account_sid,
                  [usage("calls-outbound", day, 5, "0.07") for day in window_days()])
        inject_fault(twilio.url, provider.twilio_account_sid, "malformed", field="price")
        with caplog.at_level(logging.WARNING):
            usage_pull(provider_id=provider.pk)
        assert "skipped malformed" in caplog.text
        assert set(lines_of(provider)) == {("calls-outbound", day) for day in window_days()}


def test_a_pull_that_dies_half_way_stores_nothing_and_the_next_completes(world, twilio, settings):
    settings.TWILIO_USAGE_PAGE_SIZE = 5
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        leaves = ["sms-outbound-longcode", "calls-outbound", "mms-outbound"]
        put_usage(twilio.url, provider.twilio_account_sid,
                  [usage(cat, day, 3, "0.03") for day in window_days() for cat in leaves])
        # given the first page is served, then Twilio fails for longer than the client retries
        inject_fault(twilio.url, provider.twilio_account_sid, "sleep", count=1, seconds=0)
        inject_fault(twilio.url, provider.twilio_account_sid, "status", status=500, count=4)  # = attempts
        with pytest.raises(UsageFetchError):
            usage_pull(provider_id=provider.pk)
        assert len(daily_requests(twilio.url, provider.twilio_account_sid)) == 1 + 4
        assert not UsageLine.objects.filter(subaccount=provider.subaccount).exists()
        provider.refresh_from_db()
        assert "could not be read" in provider.last_error and provider.status == ProviderStatus.ACTIVE
        # when the next pull runs with Twilio back
        assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.STORED
        # then every line is there, once
        assert len(lines_of(provider)) == 9
        provider.refresh_from_db()
        assert provider.last_error == "" and provider.last_pulled_at is not None


def test_pulls_of_one_agency_write_only_its_own_schema(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        put_usage(twilio.url, provider.lc_phone_account_sid, [usage("calls-outbound", today(), 5)])
        usage_pull(provider_id=provider.pk)
        assert UsageLine.objects.count() == 1
    with tenant_context(world.b.agency):
        assert not UsageLine.objects.exists()


def test_the_price_book_is_seeded_with_current_us_prices(db):
    prices = dict(LcPhonePrice.objects.values_list("category", "unit_price"))
    assert prices["phonenumbers-local"] == D("1.15") and prices["phonenumbers-tollfree"] == D("2.15")
    assert prices["sms-outbound-longcode"] == prices["sms-inbound-longcode"] == D("0.0083")
    assert (prices["mms-outbound"], prices["mms-inbound"]) == (D("0.022"), D("0.0165"))
    assert (prices["calls-outbound"], prices["calls-inbound-local"]) == (D("0.0166"), D("0.0117"))


def test_an_older_read_never_overwrites_a_newer_one(world, twilio):
    from phone.services import usage_lines_store
    from phone.usage_client import UsageRecord

    def record(units: int) -> UsageRecord:
        return UsageRecord(account_sid=provider.twilio_account_sid, category="calls-outbound", product="calls",
                           day=today(), count=D(units), usage=D(units), usage_unit="minutes",
                           price=D(units) / 100, price_unit="usd")

    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        read_early = timezone.now()
        read_late = read_early + timedelta(seconds=5)
        # when the later read is stored first, then the earlier one (two pulls that finished out of order)
        usage_lines_store(provider=provider, account_sid=provider.twilio_account_sid, records=[record(20)],
                          fetched_at=read_late)
        usage_lines_store(provider=provider, account_sid=provider.twilio_account_sid, records=[record(10)],
                          fetched_at=read_early)
        # then the line keeps the later read
        [line] = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert (line.units, line.cost, line.revision) == (20, D("0.2"), 1)


def test_a_pull_for_a_provider_that_changed_meanwhile_is_dropped(world, twilio):
    from phone.services import provider_set_lc_phone, usage_lines_store
    from phone.usage_client import UsageRecord

    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        old_sid = provider.twilio_account_sid
        provider_set_lc_phone(subaccount=provider.subaccount, by=world.a.admin)
        late = UsageRecord(account_sid=old_sid, category="calls-outbound", product="calls", day=today(),
                           count=D(1), usage=D(1), usage_unit="minutes", price=D("0.01"), price_unit="usd")
        result = usage_lines_store(provider=provider, account_sid=old_sid, records=[late], fetched_at=timezone.now())
        assert result.outcome == PullOutcome.PROVIDER_CHANGED
        assert not UsageLine.objects.filter(subaccount=provider.subaccount).exists()


def test_pull_tasks_sent_without_a_schema_fail_loudly(world):
    from django.db import connection

    from phone.tasks import usage_pull_agency, usage_pull_subaccount
    from rebill.celery import MissingTenantSchema

    connection.set_schema_to_public()
    for result in (usage_pull_agency.apply(), usage_pull_subaccount.apply(args=[1])):
        assert result.failed() and isinstance(result.result, MissingTenantSchema)


def test_a_pull_queued_for_a_provider_since_removed_does_nothing(world, twilio):
    from phone.models import SubAccountProvider

    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        SubAccountProvider.objects.filter(pk=provider.pk).delete()
        assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.PROVIDER_GONE
        assert not UsageLine.objects.exists()


def test_a_401_for_credentials_replaced_meanwhile_does_not_mark_the_new_ones_invalid(world, twilio):
    from phone.services import provider_mark_credentials_invalid

    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        token_the_pull_used = provider.twilio_auth_token_encrypted
        # an admin saves the credentials again (a new ciphertext) while a pull with the old ones is failing
        use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        assert not provider_mark_credentials_invalid(provider=provider, encrypted_token=token_the_pull_used,
                                                     reason="401")
        provider.refresh_from_db()
        assert provider.status == ProviderStatus.ACTIVE
