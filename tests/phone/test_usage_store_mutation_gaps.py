"""phone/services/usage_store.py where the rest of the suite does not look: a category with a carriage return (each
character COPY's text format would read as the end of a row is escaped), and a Twilio read stored in one batch with
an LC Phone read taken at the same moment (only the LC Phone one is priced by the price book)."""

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from phone.models import UsageLine
from phone.services import UsageRead, usage_reads_store
from tests.phone.helpers import D, use_twilio
from tests.phone.test_usage_batches import CATEGORY, lc_providers, read_of, record

pytestmark = pytest.mark.django_db


def test_a_category_with_a_carriage_return_is_stored_as_read(world, twilio):
    with tenant_context(world.a.agency):
        [provider] = lc_providers(world, 1)
        odd = "odd\rcategory"
        [result] = usage_reads_store([UsageRead(
            subaccount_id=provider.subaccount_id, provider=provider.provider, account_sid=provider.account_sid,
            fetched_at=timezone.now(), provider_id=provider.pk,
            records=[record(provider.account_sid, 3), record(provider.account_sid, 4, category=odd)])])
        assert result.changed == 2
        assert set(UsageLine.objects.filter(subaccount_id=provider.subaccount_id).values_list("category", "units")) == {
            (CATEGORY, 3), (odd, 4)}


def test_a_twilio_read_batched_with_an_lc_phone_read_of_the_same_moment_keeps_twilios_price(world, twilio):
    with tenant_context(world.a.agency):
        [lc_phone] = lc_providers(world, 1)
        own, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[1], admin=world.a.admin, name="own")
        # when one batch stores 100 minutes of each, read at the same moment
        at = timezone.now()
        usage_reads_store([read_of(own, 100, at), read_of(lc_phone, 100, at)])
        # then the agency's own account costs Twilio's $1.00, and LC Phone's the price book's 100 x $0.0166
        costs = {line.subaccount_id: (line.cost, line.unit_price) for line in UsageLine.objects.all()}
        assert costs == {own.subaccount_id: (D("1.00"), None), lc_phone.subaccount_id: (D("1.66"), D("0.0166"))}
