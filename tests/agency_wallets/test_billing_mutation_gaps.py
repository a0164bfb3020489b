"""agency_wallets/services.py where the rest of the suite does not look: what a billing run reports (nothing queued,
and the total it moved), a wallet that already exists when the next run bills into it, and a run started from an
agency's schema."""

from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from agency_wallets.models import AgencyWallet, AgencyWalletEntry, UsageToBill
from agency_wallets.services import AgencyBillingResult, agency_wallets_bill
from phone.models import SubAccountProvider
from tests.wallets.helpers import add_delta

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_queue() -> None:
    """Tests elsewhere commit usage (and so queue it); inside this test's transaction, start from nothing."""
    connection.set_schema_to_public()
    UsageToBill.objects.all().delete()


def _on_lc_phone(subaccount, digit: str) -> None:
    SubAccountProvider.objects.create(subaccount=subaccount, provider="lc_phone",
                                      lc_phone_account_sid="AC" + digit * 32)


def test_a_run_with_nothing_queued_reports_nothing_billed(world):
    # given an empty queue
    # when the platform bills
    result = agency_wallets_bill()
    # then it reports no entry, no wallet and a zero total, and created no wallet
    assert result == AgencyBillingResult(entries=0, wallets=0, total=Decimal(0))
    assert not AgencyWallet.objects.exists()


def test_a_run_reports_the_total_it_moved_over_every_wallet(world):
    # given usage of agency A (a debit and a credit) and of agency B
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        _on_lc_phone(client, "5")
        add_delta(client, "1.25")
        add_delta(client, "-0.05")
    with tenant_context(world.b.agency):
        other = world.b.subaccounts[0]
        _on_lc_phone(other, "6")
        add_delta(other, "0.50")
    connection.set_schema_to_public()

    # when the platform bills
    result = agency_wallets_bill()

    # then the run reports three entries in two wallets, moving -1.70 in all: what the wallets' balances moved
    assert result == AgencyBillingResult(entries=3, wallets=2, total=Decimal("-1.700000"))
    assert sum(w.balance for w in AgencyWallet.objects.all()) == result.total


def test_the_next_run_bills_into_the_wallet_the_first_created(world):
    # given agency A billed once (its wallet created by that run), agency B never
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        _on_lc_phone(client, "4")
        first_delta = add_delta(client, "0.10")
    connection.set_schema_to_public()
    assert agency_wallets_bill().entries == 1
    wallet = AgencyWallet.objects.get(agency=world.a.agency)

    # when more usage comes in and the next run bills it
    with tenant_context(world.a.agency):
        second_delta = add_delta(client, "0.20")
    connection.set_schema_to_public()
    result = agency_wallets_bill()

    # then it lands in the same wallet, continuing its chain, and the queue is empty
    assert result == AgencyBillingResult(entries=1, wallets=1, total=Decimal("-0.200000"))
    assert list(AgencyWallet.objects.values_list("pk", flat=True)) == [wallet.pk]
    assert list(wallet.entries.order_by("seq").values_list("seq", "usage_delta_id", "amount", "balance_after")) == [
        (1, first_delta.pk, Decimal("-0.100000"), Decimal("-0.100000")),
        (2, second_delta.pk, Decimal("-0.200000"), Decimal("-0.300000"))]
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("-0.300000")
    assert not UsageToBill.objects.exists()
    assert not AgencyWallet.objects.filter(agency=world.b.agency).exists()


def test_a_run_from_an_agency_schema_is_refused_and_bills_nothing(world):
    # given usage queued in agency A
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        _on_lc_phone(client, "3")
        add_delta(client, "0.10")
        # when billing is started from the agency's own schema: refused
        with pytest.raises(RuntimeError, match="^agency wallets are billed from the public schema$"):
            agency_wallets_bill()
    # then nothing was billed and the usage is still queued
    connection.set_schema_to_public()
    assert not AgencyWalletEntry.objects.exists()
    assert UsageToBill.objects.count() == 1
