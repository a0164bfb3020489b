"""Agency-wallet billing from several connections at once, on committed usage."""

from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from agency_wallets.models import AgencyWallet, UsageToBill
from agency_wallets.services import agency_wallets_bill
from phone.models import SubAccountProvider, UsageDelta, UsageLine
from subaccounts.models import SubAccount
from tests.concurrency import run_at_once
from tests.wallets.helpers import add_delta


@pytest.fixture
def committed_usage(world, django_db_blocker):
    """Usage committed in both agencies (billing runs on other connections), cleaned up afterwards."""
    with django_db_blocker.unblock():
        try:
            yield
        finally:
            connection.set_schema_to_public()
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE agency_wallets_agencywalletentry, agency_wallets_agencycharge, "
                               "agency_wallets_agencycardsetup, agency_wallets_agencywallet, "
                               "agency_wallets_usagetobill")
            for agency in (world.a.agency, world.b.agency):
                with tenant_context(agency):
                    UsageDelta.objects.all().delete()
                    UsageLine.objects.all().delete()
                    SubAccountProvider.objects.all().delete()
            connection.set_schema_to_public()


def test_billing_runs_at_once_bill_each_delta_once(world, committed_usage):
    # given 200 committed LC Phone deltas in agency A and 50 in agency B
    connection.set_schema_to_public()
    UsageToBill.objects.all().delete()
    expected = {}
    for agency, sid, count in ((world.a.agency, "1", 200), (world.b.agency, "8", 50)):
        with tenant_context(agency):
            client = SubAccount.objects.order_by("pk").first()
            SubAccountProvider.objects.create(subaccount=client, provider="lc_phone",
                                              lc_phone_account_sid="AC" + sid * 32)
            expected[agency.pk] = -sum(add_delta(client, Decimal(i % 5 - 1) / 100).cost_delta for i in range(count))

    # when four billing runs, 30 rows at a time, drain the queue at once
    def drain() -> None:
        connection.set_schema_to_public()
        while agency_wallets_bill(limit=30).entries or UsageToBill.objects.exists():
            pass

    run_at_once(drain, threads=4, timeout=120)

    # then every delta was billed once, into its own agency's wallet, and the ledgers hold
    connection.set_schema_to_public()
    assert not UsageToBill.objects.exists()
    for agency_pk, total in expected.items():
        wallet = AgencyWallet.objects.get(agency_id=agency_pk)
        entries = list(wallet.entries.order_by("seq"))
        assert len(entries) == (200 if agency_pk == world.a.agency.pk else 50)
        assert len({e.usage_delta_id for e in entries}) == len(entries)
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert wallet.balance == total == sum(e.amount for e in entries)
