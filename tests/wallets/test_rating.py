"""Rating: each usage delta fetched since rebilling was switched on becomes exactly one entry."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.plans import Product, rebilled_amount
from phone.models import SubAccountProvider, UsageDelta, UsageLine
from rebilling.models import MultiplierOverride, SubAccountRebilling
from stripe_connect.models import ConnectedAccount
from tests.billing.fixtures import ACCT_A, ACCT_B
from tests.concurrency import run_at_once
from tests.wallets.helpers import add_delta, rebill, truncate_wallets
from wallets.models import Wallet, WalletEntry
from wallets.services import subaccounts_to_rate, wallet_rate, wallets_audit


def test_each_delta_is_rated_once_at_the_multiplier_in_force(world, connected):
    with tenant_context(world.a.agency):
        # given a rebilled sub-account (Pro, SMS at 2.5x) with usage before and after the switch-on
        client = world.a.subaccounts[0]
        switched = timezone.now() - timedelta(minutes=30)
        rebill(client, account_id=ACCT_A, switched_on_at=switched)
        MultiplierOverride.objects.create(subaccount=client, product=Product.SMS, multiplier=Decimal("2.5000"))
        before = add_delta(client, "9.99", fetched_at=switched - timedelta(seconds=1))
        debit = add_delta(client, "0.000003")
        call = add_delta(client, "1.00", product=Product.CALLS)
        credit = add_delta(client, "-0.40")

        # when it is rated twice
        first = wallet_rate(subaccount_id=client.pk)
        second = wallet_rate(subaccount_id=client.pk)

        # then each delta after the switch-on has one entry: cost × multiplier, half-up to 6 places
        assert (first.entries, second.entries) == (3, 0)
        entries = {e.usage_delta_id: e for e in WalletEntry.objects.all()}
        assert before.pk not in entries
        assert entries[debit.pk].amount == Decimal("-0.000008")  # 0.0000075 → 0.000008 (half up, once)
        assert entries[debit.pk].multiplier == Decimal("2.5")
        assert entries[call.pk].amount == -rebilled_amount(cost=Decimal("1.00"), multiplier=Decimal("1.05"))
        assert entries[credit.pk].kind == WalletEntry.Kind.USAGE_CREDIT
        assert entries[credit.pk].amount == Decimal("1.000000")
        assert entries[call.pk].category == "calls-outbound" and entries[call.pk].provider_account.startswith("AC")
        wallet = Wallet.objects.get(subaccount=client)
        assert wallet.balance == sum(e.amount for e in entries.values())
        assert wallets_audit() == []
        # and the other sub-account of the agency, not rebilled, has no wallet
        assert not Wallet.objects.filter(subaccount=world.a.subaccounts[1]).exists()
    with tenant_context(world.b.agency):
        assert not WalletEntry.objects.exists()


def test_nothing_is_rated_while_switched_off_or_paused(world, connected):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebilling = rebill(client, account_id=ACCT_A)
        add_delta(client, "1.00")
        # switched off: nothing
        SubAccountRebilling.objects.filter(pk=rebilling.pk).update(switched_on=False)
        assert wallet_rate(subaccount_id=client.pk).entries == 0
        # switched on but paused (no card on the agency's current account): nothing
        SubAccountRebilling.objects.filter(pk=rebilling.pk).update(switched_on=True)
        ConnectedAccount.objects.filter(account_id=ACCT_A).update(account_id="acct_1SomeOtherAccount")
        assert wallet_rate(subaccount_id=client.pk).entries == 0
        assert not WalletEntry.objects.exists()
        # back: rated
        ConnectedAccount.objects.filter(agency=world.a.agency).update(account_id=ACCT_A)
        assert subaccounts_to_rate() == [client.pk]
        assert wallet_rate(subaccount_id=client.pk).entries == 1
        assert subaccounts_to_rate() == []


@pytest.fixture
def committed(world, django_db_blocker):
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        accounts = [ConnectedAccount.objects.create(agency=world.a.agency, account_id=ACCT_A),
                    ConnectedAccount.objects.create(agency=world.b.agency, account_id=ACCT_B)]
        try:
            yield
        finally:
            for agency in (world.a.agency, world.b.agency):
                with tenant_context(agency):
                    truncate_wallets()
                    UsageDelta.objects.all().delete()
                    UsageLine.objects.all().delete()
                    SubAccountProvider.objects.all().delete()
                    SubAccountRebilling.objects.all().delete()
                    from billing.models import BillingProfile
                    BillingProfile.objects.all().delete()
            connection.set_schema_to_public()
            for account in accounts:
                account.delete()


def test_two_rating_runs_at_once_rate_each_delta_once(world, committed):
    # given 300 committed deltas in agency A and 5 in agency B
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A)
        for i in range(300):
            add_delta(client, Decimal(i % 7 - 2) / 100)
    with tenant_context(world.b.agency):
        other = world.b.subaccounts[0]
        rebill(other, account_id=ACCT_B)
        for _ in range(5):
            add_delta(other, "0.10")

    # when agency A rates it from four threads at once (four connections)
    def rate() -> int:
        with tenant_context(world.a.agency):
            return wallet_rate(subaccount_id=client.pk).entries

    results = run_at_once(rate, threads=4)

    # then every delta was rated once, by one of them, and the ledger holds
    assert sorted(results) == [0, 0, 0, 300]
    with tenant_context(world.a.agency):
        assert WalletEntry.objects.count() == 300
        assert wallets_audit() == []
    # and agency B's wallet was never touched
    with tenant_context(world.b.agency):
        assert not WalletEntry.objects.exists()


def test_two_recharge_decisions_at_once_make_one_payment_intent(world, committed, localstripe, raw_stripe):
    from tests.billing.fixtures import on
    from wallets.services import charge_execute, wallet_adjust, wallet_recharge_start

    # given a committed wallet below its threshold, with a real card on agency A's account
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        from wallets.services import wallet_ensure
        wallet = wallet_ensure(subaccount=client)
        wallet_adjust(wallet=wallet, amount=Decimal("-4"), note="usage", by="t")

    # when four workers decide and charge at once (beat firing twice, a pull's hook, a card change)
    def decide_and_charge() -> None:
        with tenant_context(world.a.agency):
            charge = wallet_recharge_start(wallet_id=wallet.pk)
            if charge is not None:
                charge_execute(charge_id=charge.pk)

    run_at_once(decide_and_charge, threads=4)

    # then one PaymentIntent on localstripe, one charge, one credit
    intents = raw_stripe.v1.payment_intents.list(params={"limit": 100}, options=on(ACCT_A)).data
    assert [i.amount for i in intents] == [1400]
    with tenant_context(world.a.agency):
        from wallets.models import Charge
        assert Charge.objects.count() == 1
        assert Wallet.objects.get(pk=wallet.pk).balance == Decimal("10")
        assert wallets_audit() == []
    assert raw_stripe.v1.payment_intents.list(params={"limit": 100}, options=on(ACCT_B)).data == []
