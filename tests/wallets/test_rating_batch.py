"""Set-based rating: many wallets per transaction, each delta once, the rules of one sub-account unchanged."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.plans import Product
from billing.models import BillingProfile
from creditusage.models import LedgerDayTotal
from rebilling.models import MultiplierOverride, SubAccountRebilling
from tests.billing.fixtures import ACCT_A
from tests.wallets.helpers import add_delta
from tests.wallets.helpers import rebill as rebill_one
from wallets.models import Charge, Wallet, WalletEntry
from wallets.services import rating, wallet_adjust, wallet_ensure, wallets_audit, wallets_rate
from wallets.tasks import wallet_rate_agency


def rebill(subaccount, **kwargs):
    """The helper's card, under a customer id of this sub-account's own (one sub-account per customer)."""
    rebilling = rebill_one(subaccount, **kwargs)
    BillingProfile.objects.filter(subaccount=subaccount).update(stripe_customer_id=f"cus_{subaccount.pk}")
    return rebilling


def test_many_wallets_rated_in_batches_each_at_its_own_multiplier(world, connected, monkeypatch):
    # given two rebilled sub-accounts (one with SMS at 2.5x, switched on later) rated one wallet per batch
    monkeypatch.setattr(rating, "RATING_BATCH", 1)
    with tenant_context(world.a.agency):
        first, second = world.a.subaccounts
        rebill(first, account_id=ACCT_A)
        late = timezone.now() - timedelta(minutes=5)
        rebill(second, account_id=ACCT_A, switched_on_at=late)
        MultiplierOverride.objects.create(subaccount=second, product=Product.SMS, multiplier=Decimal("2.5000"))
        a1, a2 = add_delta(first, "0.10"), add_delta(first, "-0.02", product=Product.CALLS)
        early = add_delta(second, "5.00", fetched_at=late - timedelta(seconds=1))
        b1 = add_delta(second, "0.000003")

        # when every sub-account is rated, twice
        results = wallets_rate(subaccount_ids=[first.pk, second.pk, first.pk])
        again = wallets_rate(subaccount_ids=[first.pk, second.pk])

        # then each delta after its own switch-on has one entry at its own multiplier, chained per wallet
        assert {s: r.entries for s, r in results.items()} == {first.pk: 2, second.pk: 1}
        assert all(r.entries == 0 for r in again.values()) and set(again) == {first.pk, second.pk}
        amounts = dict(WalletEntry.objects.values_list("usage_delta_id", "amount"))
        assert amounts == {a1.pk: Decimal("-0.105000"), a2.pk: Decimal("0.021000"),
                           b1.pk: Decimal("-0.000008")}  # 0.0000075 → 0.000008, half up
        assert early.pk not in amounts
        for subaccount, result in results.items():
            wallet = Wallet.objects.get(subaccount_id=subaccount)
            assert wallet.pk == result.wallet_id and wallet.balance == result.total
            assert list(wallet.entries.order_by("seq").values_list("seq", flat=True)) == \
                list(range(1, result.entries + 1))
        assert wallets_audit() == []
    with tenant_context(world.b.agency):
        assert not WalletEntry.objects.exists() and not Wallet.objects.exists()


def test_sub_accounts_switched_off_or_paused_are_skipped_in_a_batch(world, connected):
    with tenant_context(world.a.agency):
        # given one rebilled sub-account and one switched off, both with usage
        on, off = world.a.subaccounts
        rebill(on, account_id=ACCT_A)
        rebill(off, account_id=ACCT_A)
        SubAccountRebilling.objects.filter(subaccount=off).update(switched_on=False)
        add_delta(on, "1.00")
        add_delta(off, "1.00")

        # when both are rated at once
        results = wallets_rate(subaccount_ids=[on.pk, off.pk])

        # then only the switched-on one has a wallet and an entry
        assert set(results) == {on.pk}
        assert not Wallet.objects.filter(subaccount=off).exists()
        assert WalletEntry.objects.get().wallet.subaccount_id == on.pk


def test_the_agency_run_rates_everything_then_decides_recharges(world, connected):
    with tenant_context(world.a.agency):
        # given two rebilled sub-accounts: one whose threshold the usage crosses, one credited (above its threshold)
        crossing, calm = world.a.subaccounts
        rebill(crossing, account_id=ACCT_A, threshold="0.50")
        rebill(calm, account_id=ACCT_A, threshold="0")
        add_delta(crossing, "1.00")
        add_delta(calm, "-1.00")  # a credit: its balance stays above its threshold

        # when the beat's agency run fires
        rated = wallet_rate_agency()

        # then both were rated, and one recharge was started, for the wallet below its threshold only
        assert rated == 2
        charge = Charge.objects.get()
        assert charge.wallet.subaccount_id == crossing.pk and charge.status == Charge.Status.STARTED
        assert wallets_audit() == []
    with tenant_context(world.b.agency):
        assert not Charge.objects.exists()


def test_a_batch_counts_each_new_entry_once_in_the_day_totals_and_a_rerun_rates_nothing(world, connected):
    with tenant_context(world.a.agency):
        # given a wallet that already has an entry, with two SMS deltas, and another wallet with a calls refund
        first, second = world.a.subaccounts
        rebill(first, account_id=ACCT_A)
        rebill(second, account_id=ACCT_A)
        wallet = wallet_ensure(subaccount=first)
        wallet_adjust(wallet=wallet, amount=Decimal("5"), note="start", by="t")
        add_delta(first, "0.10")
        add_delta(first, "0.20")
        add_delta(second, "-0.02", product=Product.CALLS)

        # when both are rated, twice
        results = wallets_rate(subaccount_ids=[first.pk, second.pk])
        again = wallets_rate(subaccount_ids=[first.pk, second.pk])

        # then the day totals hold each entry once, by sign (the adjustment and the two debits; the credit)
        other = results[second.pk].wallet_id
        totals = {(row.wallet_id, row.sign): (row.entries, row.amount) for row in LedgerDayTotal.objects.all()}
        assert totals == {(wallet.pk, 1): (1, Decimal("5")), (wallet.pk, -1): (2, Decimal("-0.315")),
                          (other, 1): (1, Decimal("0.021"))}
        # and the second run rated nothing, for nothing
        assert {s: (r.entries, r.total) for s, r in again.items()} == {first.pk: (0, 0), second.pk: (0, 0)}


def test_the_beat_lists_switched_on_sub_accounts_with_usage_fetched_since_the_switch_on(world, connected):
    with tenant_context(world.a.agency):
        on, off = world.a.subaccounts
        switched_on_at = timezone.now() - timedelta(minutes=5)
        rebill(on, account_id=ACCT_A, switched_on_at=switched_on_at)
        rebilling_off = rebill(off, account_id=ACCT_A, switched_on_at=switched_on_at)
        SubAccountRebilling.objects.filter(pk=rebilling_off.pk).update(switched_on=False)  # keeps its switch-on time
        # given usage fetched before the switch-on (never rebilled), and usage of a switched-off client
        add_delta(on, "1.00", fetched_at=switched_on_at - timedelta(seconds=1))
        add_delta(off, "1.00")
        assert rating.subaccounts_to_rate() == []
        # then usage fetched at the switch-on itself is listed
        add_delta(on, "2.00", product=Product.CALLS, fetched_at=switched_on_at)
        assert rating.subaccounts_to_rate() == [on.pk]
