"""The wallet audit finds each way a client's ledger can go wrong, names the wallet and the charge, and nothing else.

The database's triggers refuse every one of these states; the audit is the net for a bug that would get past them
(or a hand-edited row), so each state is planted here with the triggers off for one transaction."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from tests.billing.fixtures import ACCT_A
from tests.wallets.helpers import rebill
from wallets.locks import wallet_lock
from wallets.models import Charge, Refund, Wallet, WalletEntry
from wallets.services import charge_execute, wallet_adjust, wallet_ensure, wallet_recharge_start, wallets_audit
from wallets.services.ledger import entry_append


def _without_triggers(*statements: tuple[str, list[object]]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # triggers off, this transaction only
        for sql, params in statements:
            cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def _wallet_with(subaccount, *amounts: str) -> Wallet:
    wallet = wallet_ensure(subaccount=subaccount)
    for amount in amounts:
        wallet_adjust(wallet=wallet, amount=Decimal(amount), note="test", by="t")
    wallet.refresh_from_db()
    return wallet


def _charge(wallet: Wallet, status: str, amount: str = "10") -> Charge:
    charge = Charge.objects.create(wallet=wallet, kind=Charge.Kind.MANUAL, status=status, amount=Decimal(amount),
                                   currency="usd", stripe_account_id=ACCT_A, stripe_customer_id="cus_test",
                                   payment_method_id="pm_test", completed_at=timezone.now())
    Charge.objects.filter(pk=charge.pk).update(idempotency_key=f"charge:test:{charge.pk}")
    return charge


def _credit(wallet: Wallet, charge: Charge, amount: str) -> None:
    entry_append(wallet=wallet_lock(wallet_id=wallet.pk), kind=WalletEntry.Kind.MANUAL_TOP_UP, amount=Decimal(amount),
                 charge=charge, note="test", created_by="t")


def test_each_broken_ledger_is_found_on_its_own_wallet(world, db):
    with tenant_context(world.a.agency):
        first, second = world.a.subaccounts
        # given a wallet whose balance was moved without an entry
        moved = _wallet_with(first, "5", "-2")
        _without_triggers(("UPDATE wallets_wallet SET balance = balance + 1 WHERE id = %s", [moved.pk]))
        # and a wallet whose last entry's balance_after is wrong, and whose first entry is gone
        chained = _wallet_with(second, "4", "1")
        _without_triggers(
            ("UPDATE wallets_walletentry SET balance_after = 7 WHERE wallet_id = %s AND seq = 2", [chained.pk]),
            ("DELETE FROM wallets_walletentry WHERE wallet_id = %s AND seq = 1", [chained.pk]),
            ("UPDATE wallets_wallet SET balance = 1 WHERE id = %s", [chained.pk]),
        )

        # when the audit runs
        problems = [str(finding) for finding in wallets_audit()]

        # then each problem is named on its wallet, and nothing else is reported
        assert problems == [
            f"wallet {moved.pk}: balance 4.000000 != sum of entries 3.000000",
            f"wallet {moved.pk}: latest balance_after 3.000000 != 4.000000",
            f"wallet {chained.pk}: 1 entries but last seq 2",
            f"wallet {chained.pk}: latest balance_after 7.000000 != 1.000000",
        ]


def test_a_wallet_without_entries_is_audited_too(world, db):
    with tenant_context(world.a.agency):
        empty = wallet_ensure(subaccount=world.a.subaccounts[0])
        assert wallets_audit() == []
        _without_triggers(("UPDATE wallets_wallet SET balance = 2 WHERE id = %s", [empty.pk]))
        assert [str(finding) for finding in wallets_audit()] == [f"wallet {empty.pk}: balance 2.000000 != sum of "
                                                                 "entries 0"]


def test_charges_not_credited_once_for_their_amount_are_found(world, db):
    with tenant_context(world.a.agency):
        first, second = world.a.subaccounts
        wallet = _wallet_with(first)
        other = _wallet_with(second)
        # given succeeded charges credited never (a second credit the database refuses: one_credit_per_charge),
        # once for the wrong amount, and once right
        never = _charge(wallet, Charge.Status.SUCCEEDED)
        short = _charge(wallet, Charge.Status.SUCCEEDED, "3")
        _credit(wallet, short, "2.5")
        right = _charge(wallet, Charge.Status.SUCCEEDED, "4")
        _credit(wallet, right, "4")
        # and a failed charge that was credited, and a failed one that was not
        failed = _charge(other, Charge.Status.FAILED, "6")
        _credit(other, failed, "6")
        _charge(other, Charge.Status.FAILED, "7")
        # and an adjustment, which is no credit of a charge
        wallet_adjust(wallet=wallet, amount=Decimal("1"), note="goodwill", by="t")

        problems = [str(finding) for finding in wallets_audit()]

        assert problems == [
            f"wallet {wallet.pk}: succeeded charge {never.pk} credited 0 time(s)",
            f"wallet {wallet.pk}: succeeded charge {short.pk} credited 1 time(s)",
            f"wallet {other.pk}: charge {failed.pk} is failed but credited",
        ]


def test_a_recharge_credit_counts_as_the_charges_credit(world, db):
    with tenant_context(world.a.agency):
        wallet = _wallet_with(world.a.subaccounts[0])
        charge = _charge(wallet, Charge.Status.SUCCEEDED)
        entry_append(wallet=wallet_lock(wallet_id=wallet.pk), kind=WalletEntry.Kind.RECHARGE, amount=Decimal("10"),
                     charge=charge, note="test", created_by="t")
        assert wallets_audit() == []


def test_succeeded_charges_are_checked_at_stripe_on_the_current_account_since_the_day_asked(world, connected,
                                                                                          raw_stripe):
    with tenant_context(world.a.agency):
        # given a client charged $13.15 for real on agency A's account
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        wallet = _wallet_with(client, "-3.141")
        charge = wallet_recharge_start(wallet_id=wallet.pk)
        charge_execute(charge_id=charge.pk)
        since = timezone.now() - timedelta(days=1)
        assert wallets_audit(stripe_since=since) == []

        # when our row says another amount than Stripe's PaymentIntent
        Charge.objects.filter(pk=charge.pk).update(amount=Decimal("13.16"))
        problems = [str(finding) for finding in wallets_audit(stripe_since=since)]
        # then Stripe's word is reported (and the credit no longer matches the charge)
        assert problems == [f"wallet {wallet.pk}: succeeded charge {charge.pk} credited 1 time(s)",
                            f"wallet {wallet.pk}: charge {charge.pk}: Stripe says succeeded 1315"]
        # and Stripe is asked only when asked, only about charges completed since the day asked
        assert [str(f) for f in wallets_audit()] == problems[:1]
        assert [str(f) for f in wallets_audit(stripe_since=timezone.now() + timedelta(minutes=1))] == problems[:1]

        # when the PaymentIntent is not on the account at all
        Charge.objects.filter(pk=charge.pk).update(amount=Decimal("13.15"), payment_intent_id="pi_unknown")
        assert [str(f) for f in wallets_audit(stripe_since=since)] == [
            f"wallet {wallet.pk}: charge {charge.pk}: pi_unknown not found at Stripe"]

        # when the charge was made on an account the agency is no longer connected to, it is not asked about
        Charge.objects.filter(pk=charge.pk).update(stripe_account_id="acct_previous")
        assert wallets_audit(stripe_since=since) == []


def test_without_a_stripe_connection_only_the_ledger_is_audited(world, db):
    with tenant_context(world.a.agency):
        # given an agency with no Stripe account connected, a succeeded charge credited right, and a moved balance
        wallet = _wallet_with(world.a.subaccounts[0])
        _credit(wallet, _charge(wallet, Charge.Status.SUCCEEDED, "4"), "4")
        moved = _wallet_with(world.a.subaccounts[1], "2")
        _without_triggers(("UPDATE wallets_wallet SET balance = balance + 1 WHERE id = %s", [moved.pk]))

        # when the audit is asked to check Stripe too, it checks the ledger and asks Stripe nothing
        problems = [str(finding) for finding in wallets_audit(stripe_since=timezone.now() - timedelta(days=1))]

        assert problems == [f"wallet {moved.pk}: balance 3.000000 != sum of entries 2.000000",
                            f"wallet {moved.pk}: latest balance_after 2.000000 != 3.000000"]


def test_every_charge_stripe_does_not_know_is_named_and_logged(world, connected, caplog):
    with tenant_context(world.a.agency):
        # given two succeeded charges on the agency's account whose PaymentIntents Stripe has never seen
        wallet = _wallet_with(world.a.subaccounts[0])
        first, second = _charge(wallet, Charge.Status.SUCCEEDED, "4"), _charge(wallet, Charge.Status.SUCCEEDED, "5")
        for charge, amount in ((first, "4"), (second, "5")):
            _credit(wallet, charge, amount)
            Charge.objects.filter(pk=charge.pk).update(payment_intent_id=f"pi_unknown{charge.pk}")
        # and a failed one, which is not asked about at Stripe (it moved no money)
        failed = _charge(wallet, Charge.Status.FAILED, "6")
        Charge.objects.filter(pk=failed.pk).update(payment_intent_id=f"pi_unknown{failed.pk}")

        # when the audit checks them at Stripe
        with caplog.at_level(logging.ERROR, logger="wallets.services.audit"):
            problems = [str(finding) for finding in wallets_audit(stripe_since=timezone.now() - timedelta(days=1))]

        # then each is named, and each is logged as an error for the on-call engineer
        expected = [f"wallet {wallet.pk}: charge {first.pk}: pi_unknown{first.pk} not found at Stripe",
                    f"wallet {wallet.pk}: charge {second.pk}: pi_unknown{second.pk} not found at Stripe"]
        assert problems == expected
        assert [(record.levelno, record.getMessage()) for record in caplog.records
                if record.name == "wallets.services.audit"] == [
            (logging.ERROR, f"Wallet audit: {problem}") for problem in expected]


def test_a_refund_of_a_credited_charge_is_no_second_credit(world, db):
    with tenant_context(world.a.agency):
        # given a succeeded charge credited once, then partly refunded (the refund's entry names the charge too)
        wallet = _wallet_with(world.a.subaccounts[0])
        charge = _charge(wallet, Charge.Status.SUCCEEDED, "4")
        _credit(wallet, charge, "4")
        refund = Refund.objects.create(charge=charge, amount=Decimal("1.5"), status=Refund.Status.SUCCEEDED,
                                       requested_by="admin@alpha.test", completed_at=timezone.now())
        Refund.objects.filter(pk=refund.pk).update(idempotency_key=f"refund:test:{refund.pk}")
        entry_append(wallet=wallet_lock(wallet_id=wallet.pk), kind=WalletEntry.Kind.REFUND, amount=Decimal("-1.5"),
                     charge=charge, refund=refund, note="refund", created_by="t")

        # then the audit finds nothing wrong: one credit, for the charge's amount
        assert wallets_audit() == []
