"""phone/services/usage_store.py where the rest of the suite does not look: a category with a carriage return (each
character COPY's text format would read as the end of a row is escaped)."""

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from phone.models import UsageLine
from phone.services import UsageRead, usage_reads_store
from tests.phone.test_usage_batches import CATEGORY, lc_providers, record

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
