"""No category is dropped (unmapped ones bill as Other), each day is checked against Twilio's totalprice,
and only USD accounts are stored."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from devservices.fake_twilio import create_account
from phone.models import ProviderStatus, SubAccountProvider, UsageLine
from phone.services import PullOutcome, provider_set_twilio, usage_pull
from phoneregistry.models import UsageAlert
from tests.phone.helpers import D, lines_of, put_usage, sid, today, token, usage, use_lc_phone, use_twilio

pytestmark = pytest.mark.django_db


def test_an_unmapped_category_of_a_twilio_account_is_stored_as_other_at_twilios_price(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        put_usage(twilio.url, provider.twilio_account_sid, [
            usage("calls-sip", today(), 12, "0.048"), usage("calls-outbound", today(), 3, "0.042")])
        usage_pull(provider_id=provider.pk)
        line = lines_of(provider)[("calls-sip", today())]
        assert (line.product, line.units, line.cost, line.unit_price) == ("other", 12, D("0.048"), None)
        assert not UsageAlert.objects.exists()  # Twilio's price is the agency's cost: nothing to tell staff
    with tenant_context(world.b.agency):
        assert not UsageLine.objects.exists()


def test_an_unmapped_lc_phone_category_is_billed_at_twilios_price_and_staff_are_alerted(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        put_usage(twilio.url, provider.lc_phone_account_sid, [usage("calls-sip", today(), 12, "0.048")])
        usage_pull(provider_id=provider.pk)
        usage_pull(provider_id=provider.pk)
        line = lines_of(provider)[("calls-sip", today())]
        assert (line.product, line.cost) == ("other", D("0.048"))
    [alert] = UsageAlert.objects.all()  # once, however many pulls see it
    assert (alert.kind, alert.category, alert.day, alert.agency_id, alert.subaccount_id) == (
        UsageAlert.Kind.UNPRICED_CATEGORY, "calls-sip", today(), world.a.agency.pk, provider.subaccount_id)


def test_a_day_whose_leaves_fall_short_of_totalprice_raises_an_alert_on_the_daily_check(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        put_usage(twilio.url, provider.twilio_account_sid, [
            usage("calls-outbound", today(), 3, "0.042"),
            {**usage("sms-outbound-longcode", today(), 100, "0.79"), "unlisted": True}])
        # the 5-minute pull does not check
        usage_pull(provider_id=provider.pk)
        assert not UsageAlert.objects.exists()
        # the daily re-read does
        usage_pull(provider_id=provider.pk, full_reread=True)
    [alert] = UsageAlert.objects.all()
    assert (alert.kind, alert.day, alert.account_sid) == (UsageAlert.Kind.TOTAL_MISMATCH, today(),
                                                          provider.twilio_account_sid)
    assert "$0.042" in alert.detail and "$0.832" in alert.detail


def test_a_day_whose_leaves_add_up_raises_no_alert(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        put_usage(twilio.url, provider.twilio_account_sid, [
            usage("calls-outbound", today(), 3, "0.042"), usage("calls-sip", today(), 1, "0.004"),
            usage("mms-inbound-longcode", today(), 10, "0.20")])
        usage_pull(provider_id=provider.pk, full_reread=True)
        assert not UsageAlert.objects.exists()


def test_a_twilio_account_billed_in_another_currency_is_refused_at_setup(world, twilio):
    account_sid, auth_token = sid("euro"), token("euro")
    create_account(twilio.url, account_sid, auth_token, currency="eur")
    with tenant_context(world.a.agency):
        with pytest.raises(ValidationError) as refused:
            provider_set_twilio(subaccount=world.a.subaccounts[0], account_sid=account_sid, auth_token=auth_token,
                                by=world.a.admin)
        assert "billed in EUR" in str(refused.value)
        assert not SubAccountProvider.objects.exists()


def test_usage_of_an_account_that_turned_non_usd_is_never_stored_as_usd(world, twilio):
    with tenant_context(world.a.agency):
        provider, auth_token = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin,
                                          name="own")
        create_account(twilio.url, provider.twilio_account_sid, auth_token, currency="gbp")
        put_usage(twilio.url, provider.twilio_account_sid, [usage("calls-outbound", today(), 3, "0.03")])
        assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.CURRENCY_REFUSED
        assert not UsageLine.objects.exists()
        provider.refresh_from_db()
        assert "GBP" in provider.last_error and provider.status == ProviderStatus.ACTIVE
