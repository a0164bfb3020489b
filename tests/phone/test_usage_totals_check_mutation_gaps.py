"""phone/services/usage.py's daily check that a day's leaves add up to Twilio's totalprice, where the rest of the
suite does not look: half cents, a day Twilio totals with no leaf at all, and what the error log says."""

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from phone.models import SubAccountProvider
from phone.services.usage import usage_totals_check
from phone.usage_client import UsageRecord
from phoneregistry.models import UsageAlert
from tests.phone.helpers import today

pytestmark = pytest.mark.django_db

SID = "AC" + "5" * 32


def _leaf(category: str, day, price: str) -> UsageRecord:
    return UsageRecord(account_sid=SID, category=category, product="sms", day=day, count=Decimal(1),
                       usage=Decimal(1), usage_unit="segments", price=Decimal(price), price_unit="usd")


def test_half_cents_round_up_on_both_sides_and_a_day_without_leaves_is_zero(world, caplog):
    day, before, earlier = today(), today() - timedelta(days=1), today() - timedelta(days=2)
    with tenant_context(world.a.agency):
        provider = SubAccountProvider.objects.create(subaccount=world.a.subaccounts[0], provider="lc_phone",
                                                     lc_phone_account_sid=SID)
        records = [_leaf("sms-outbound-longcode", day, "0.120"), _leaf("calls-outbound", day, "0.005"),
                   _leaf("sms-outbound-longcode", before, "0.13")]
        # given: today's leaves make $0.125 against Twilio's $0.13 (equal once both round half up); yesterday's
        # $0.13 against Twilio's $0.125 (the same); the day before, no leaf and Twilio's $0.00, then $1.00
        totals = {day: Decimal("0.13"), before: Decimal("0.125"), earlier: Decimal("0.00")}
        # when the daily check runs: every day adds up
        assert usage_totals_check(provider=provider, account_sid=SID, records=records, totals=totals) == []
        assert not UsageAlert.objects.exists()
        # and when Twilio says $1.00 for the day without leaves: that day, and only it, does not add up
        with caplog.at_level(logging.ERROR, logger="phone.services.usage"):
            gaps = usage_totals_check(provider=provider, account_sid=SID, records=records,
                                      totals={**totals, earlier: Decimal("1.00")})
    assert gaps == [earlier]
    connection.set_schema_to_public()
    [alert] = UsageAlert.objects.all()
    assert (alert.kind, alert.day, alert.detail) == (
        UsageAlert.Kind.TOTAL_MISMATCH, earlier, "Leaves add up to $0 but Twilio's totalprice is $1.00.")
    assert [record.getMessage() for record in caplog.records] == [
        f"Usage of {SID} (sub-account {provider.subaccount_id}) on {earlier}: "
        "Leaves add up to $0 but Twilio's totalprice is $1.00."]
