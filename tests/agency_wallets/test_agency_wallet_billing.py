"""The agency's wallet with the platform: every LC Phone usage delta, rebilled or not, billed once at the price
book, fed from the pull's transaction without visiting agency schemas."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from agency_wallets.models import AgencyWallet, AgencyWalletEntry, UsageToBill
from agency_wallets.services import agency_wallets_bill
from phone.models import SubAccountProvider, UsageDelta, UsageLine
from tests.wallets.helpers import add_delta, rebill

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_queue() -> None:
    """Tests elsewhere commit usage (and so queue it); inside this test's transaction, start from nothing."""
    connection.set_schema_to_public()
    UsageToBill.objects.all().delete()


def _twilio_delta(subaccount, cost: str) -> UsageDelta:
    """A delta on the agency's own Twilio account: not the platform's to bill."""
    now = timezone.now()
    line = UsageLine.objects.create(subaccount=subaccount, provider="twilio", account_sid="AC" + "7" * 32,
                                    category="sms-outbound-longcode", day=now.date(), product="sms",
                                    usage_unit="segments", count=1, units=1, twilio_price=0, cost=Decimal(cost),
                                    currency="usd", revision=1, fetched_at=now, created_at=now, updated_at=now)
    return UsageDelta.objects.create(line=line, revision=1, units_delta=1, cost_delta=Decimal(cost),
                                     currency="usd", fetched_at=now)


def test_every_lc_phone_delta_is_billed_once_to_its_own_agency(world):
    # given agency A: a rebilled sub-account and one that is not, both on LC Phone, plus Twilio usage of its own
    with tenant_context(world.a.agency):
        rebilled, plain = world.a.subaccounts
        rebill(rebilled, account_id="acct_1RebillAlphaAAAAA")
        SubAccountProvider.objects.create(subaccount=plain, provider="lc_phone", lc_phone_account_sid="AC" + "5" * 32)
        a_deltas = [add_delta(rebilled, "0.0079"), add_delta(rebilled, "-0.0020"), add_delta(plain, "1.25")]
        twilio = _twilio_delta(plain, "9.00")
    # and agency B with one LC Phone delta
    with tenant_context(world.b.agency):
        other = world.b.subaccounts[0]
        SubAccountProvider.objects.create(subaccount=other, provider="lc_phone", lc_phone_account_sid="AC" + "6" * 32)
        b_delta = add_delta(other, "0.50")
    connection.set_schema_to_public()
    # the pull's own transaction queued the LC Phone deltas, and only those
    assert UsageToBill.objects.count() == 4

    # when the platform bills, twice
    first = agency_wallets_bill()
    second = agency_wallets_bill()

    # then each delta has one entry in its own agency's wallet, at its price-book cost
    assert (first.entries, first.wallets, second.entries) == (4, 2, 0)
    a_wallet = AgencyWallet.objects.get(agency=world.a.agency)
    b_wallet = AgencyWallet.objects.get(agency=world.b.agency)
    a_entries = {e.usage_delta_id: e for e in a_wallet.entries.all()}
    assert set(a_entries) == {d.pk for d in a_deltas}  # the Twilio delta is not among them
    assert twilio.pk not in a_entries
    assert a_entries[a_deltas[1].pk].kind == AgencyWalletEntry.Kind.USAGE_CREDIT
    assert a_entries[a_deltas[1].pk].amount == Decimal("0.002000")
    assert a_wallet.balance == Decimal("-1.255900") == sum(e.amount for e in a_entries.values())
    assert [e.seq for e in a_wallet.entries.order_by("seq")] == [1, 2, 3]
    assert a_wallet.entries.order_by("-seq").first().balance_after == a_wallet.balance
    assert list(b_wallet.entries.values_list("usage_delta_id", "amount")) == [(b_delta.pk, Decimal("-0.500000"))]
    assert b_wallet.balance == Decimal("-0.500000")
    # the defaults: add $10 when below $10
    assert (a_wallet.auto_recharge_amount, a_wallet.auto_recharge_threshold) == (Decimal(10), Decimal(10))
    assert not UsageToBill.objects.exists()


def test_a_delta_queued_twice_is_billed_once(world):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        SubAccountProvider.objects.create(subaccount=client, provider="lc_phone", lc_phone_account_sid="AC" + "4" * 32)
        delta = add_delta(client, "0.10")
    connection.set_schema_to_public()
    queued = UsageToBill.objects.get()
    queued.pk = None
    queued.save()  # the same delta, queued again

    assert agency_wallets_bill().entries == 1
    assert AgencyWalletEntry.objects.get().usage_delta_id == delta.pk
    assert AgencyWallet.objects.get(agency=world.a.agency).balance == Decimal("-0.100000")
    assert not UsageToBill.objects.exists()
    assert not AgencyWallet.objects.filter(agency=world.b.agency).exists()


def test_billing_reads_only_the_queue_never_an_agency_schema(world):
    connection.set_schema_to_public()
    # given nothing queued: one query, whatever the number of agencies
    with CaptureQueriesContext(connection) as nothing:
        assert agency_wallets_bill().entries == 0
    statements = [q["sql"] for q in nothing.captured_queries]
    assert len([s for s in statements if "SAVEPOINT" not in s and "search_path" not in s]) == 1

    # given usage queued in agency A
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        SubAccountProvider.objects.create(subaccount=client, provider="lc_phone", lc_phone_account_sid="AC" + "3" * 32)
        add_delta(client, "0.10")
    connection.set_schema_to_public()
    with CaptureQueriesContext(connection) as billing:
        assert agency_wallets_bill().entries == 1
    # then no agency table was read
    sql = " ".join(q["sql"] for q in billing.captured_queries)
    assert "phone_" not in sql and "wallets_wallet" not in sql and "subaccounts_" not in sql


def test_the_database_refuses_an_edited_entry_or_a_balance_off_its_ledger(world):
    # given one billed delta
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        SubAccountProvider.objects.create(subaccount=client, provider="lc_phone", lc_phone_account_sid="AC" + "2" * 32)
        add_delta(client, "0.10")
    connection.set_schema_to_public()
    agency_wallets_bill()
    wallet = AgencyWallet.objects.get(agency=world.a.agency)

    # when an entry is edited, or the balance set apart from the ledger, or an entry breaks the chain: refused
    for attempt in (lambda: AgencyWalletEntry.objects.update(amount=Decimal("5")),
                    lambda: AgencyWalletEntry.objects.all().delete(),
                    lambda: AgencyWallet.objects.filter(pk=wallet.pk).update(balance=Decimal("5")),
                    lambda: AgencyWalletEntry.objects.create(wallet=wallet, seq=2, kind="adjustment",
                                                             amount=Decimal("1"), balance_after=Decimal("7"))):
        with pytest.raises(IntegrityError), transaction.atomic():
            attempt()

    # then nothing changed
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("-0.100000")
    assert list(AgencyWalletEntry.objects.values_list("seq", "amount")) == [(1, Decimal("-0.100000"))]

