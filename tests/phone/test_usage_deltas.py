"""Usage deltas: the upsert of a line appends one insert-only delta per revision, and cost == Σ deltas."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone.models import SubAccountProvider, UsageDelta, UsageLine
from phone.services import usage_lines_store, usage_pull
from phone.usage_client import UsageRecord
from pricebook.models import LcPhonePrice
from pricebook.services import lc_phone_price_add
from tests.phone.helpers import D, put_usage, today, usage, use_lc_phone, use_twilio

pytestmark = pytest.mark.django_db


def deltas_of(line: UsageLine) -> list[UsageDelta]:
    return list(UsageDelta.objects.filter(line=line).order_by("revision"))


def test_each_change_of_a_line_appends_one_delta_and_a_correction_down_is_negative(world, twilio):
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        account = provider.lc_phone_account_sid
        put_usage(twilio.url, account, [usage("sms-outbound-longcode", today(), 100, "0.79")])
        usage_pull(provider_id=provider.pk)
        usage_pull(provider_id=provider.pk)  # nothing new: no delta
        lc_phone_price_add(category="sms-outbound-longcode", unit="segment", unit_price=D("0.0100"), by=None)
        put_usage(twilio.url, account, [usage("sms-outbound-longcode", today(), 150, "1.185")])
        usage_pull(provider_id=provider.pk)
        put_usage(twilio.url, account, [usage("sms-outbound-longcode", today(), 120, "0.948")])
        usage_pull(provider_id=provider.pk)

        [line] = UsageLine.objects.filter(subaccount=provider.subaccount)
        deltas = deltas_of(line)
        assert [(d.revision, d.units_delta, d.unit_price, d.cost_delta, d.currency) for d in deltas] == [
            (1, 100, D("0.0083"), D("0.83"), "usd"),
            (2, 50, D("0.01"), D("0.50"), "usd"),
            # 30 units taken back at the line's average price (1.33 / 150)
            (3, -30, D("0.008867"), D("1.064") - D("1.33"), "usd"),
        ]
        assert line.cost == sum(d.cost_delta for d in deltas) == D("1.064")
        assert line.revision == 3 and line.currency == "usd"
    with tenant_context(world.b.agency):
        assert not UsageDelta.objects.exists()


def test_a_twilio_line_has_deltas_at_twilios_price(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        put_usage(twilio.url, provider.twilio_account_sid, [usage("calls-outbound", today(), 10, "0.14")])
        usage_pull(provider_id=provider.pk)
        put_usage(twilio.url, provider.twilio_account_sid, [usage("calls-outbound", today(), 4, "0.056")])
        usage_pull(provider_id=provider.pk)
        [line] = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert [(d.units_delta, d.unit_price, d.cost_delta) for d in deltas_of(line)] == [
            (10, None, D("0.14")), (-6, None, D("-0.084"))]


# --- Property: any sequence of pulls keeps cost == Σ deltas -------------------------------------------------

CATEGORIES = ["sms-outbound-longcode", "calls-outbound"]

one_pull = st.fixed_dictionaries({
    "units": st.lists(st.integers(min_value=0, max_value=60), min_size=2, max_size=2),  # per category
    "price_change": st.one_of(st.none(), st.decimals(min_value="0", max_value="0.05", places=4)),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pulls=st.lists(one_pull, min_size=1, max_size=6), order=st.randoms(use_true_random=False))
def test_any_sequence_of_pulls_keeps_cost_equal_to_the_sum_of_deltas(world, twilio, lc_provider, pulls, order):
    provider = lc_provider
    day = today()
    base = timezone.now() + timedelta(days=1)  # price rows take effect at the reads below, not before
    with tenant_context(world.a.agency):
        UsageDelta.objects.filter(line__subaccount=provider.subaccount).delete()
        UsageLine.objects.filter(subaccount=provider.subaccount).delete()
        SubAccountProvider.objects.filter(pk=provider.pk).update(read_marks={})
        reads = []
        for n, pull in enumerate(pulls):
            fetched_at = base + timedelta(seconds=10 * n + 5)
            if pull["price_change"] is not None:
                LcPhonePrice.objects.create(category=CATEGORIES[n % 2], unit="unit", unit_price=pull["price_change"],
                                            effective_from=base + timedelta(seconds=10 * n))
            records = [UsageRecord(account_sid=provider.lc_phone_account_sid, category=category, product="sms",
                                   day=day, count=D(units), usage=D(units), usage_unit="unit",
                                   price=D(units) / 100, price_unit="usd")
                       for category, units in zip(CATEGORIES, pull["units"], strict=True)]
            reads.append((fetched_at, records))
        # reads commit in any order (a later read may be stored before an earlier one)
        order.shuffle(reads)
        for fetched_at, records in reads:
            before = _total_cost(provider)
            usage_lines_store(provider=provider, account_sid=provider.lc_phone_account_sid, records=records,
                              fetched_at=fetched_at)
            pulled = UsageDelta.objects.filter(line__subaccount=provider.subaccount, fetched_at=fetched_at)
            assert _total_cost(provider) - before == (pulled.aggregate(s=Sum("cost_delta"))["s"] or 0)

        for line in UsageLine.objects.filter(subaccount=provider.subaccount):
            deltas = deltas_of(line)
            assert line.cost == sum(d.cost_delta for d in deltas)
            assert line.units == sum(d.units_delta for d in deltas)
            assert [d.revision for d in deltas] == list(range(1, line.revision + 1))
        # the newest read wins, whatever the order the reads were stored in
        newest = max(reads, key=lambda read: read[0])
        stored = {line.category: line.units for line in UsageLine.objects.filter(subaccount=provider.subaccount)}
        assert stored == {r.category: r.usage for r in newest[1]}
        LcPhonePrice.objects.filter(effective_from__gte=base).delete()


def _total_cost(provider) -> Decimal:
    return UsageLine.objects.filter(subaccount=provider.subaccount).aggregate(s=Sum("cost"))["s"] or Decimal(0)


@pytest.fixture
def lc_provider(world, twilio):
    with tenant_context(world.a.agency):
        return use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
