"""wallets/services/ledger.py where the rest of the suite does not look: a wallet found by its sub-account's id, two
entries appended under one lock, the rollups each entry feeds, and the reason an amount is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django_tenants.utils import tenant_context

from creditusage.models import LedgerDayTotal
from wallets.locks import wallet_lock
from wallets.models import Wallet, WalletEntry
from wallets.services import wallet_adjust, wallet_ensure, wallets_audit
from wallets.services.ledger import entry_append


def test_a_wallet_is_found_by_its_sub_accounts_id_as_by_the_sub_account(world, db):
    with tenant_context(world.a.agency):
        subaccount = world.a.subaccounts[0]
        # given the wallet made for the sub-account
        made = wallet_ensure(subaccount=subaccount)
        # when it is asked for by the sub-account's id alone
        found = wallet_ensure(subaccount=subaccount.pk)
        # then it is the same wallet, not a second one
        assert found.pk == made.pk
        assert Wallet.objects.filter(subaccount=subaccount).count() == 1


def test_two_entries_appended_under_one_lock_chain_their_balances(world, db):
    with tenant_context(world.a.agency):
        wallet = wallet_ensure(subaccount=world.a.subaccounts[0])
        # when one transaction appends a credit then a debit to the wallet it locked
        with transaction.atomic():
            locked = wallet_lock(wallet_id=wallet.pk)
            kind = WalletEntry.Kind.ADJUSTMENT
            entry_append(wallet=locked, kind=kind, amount=Decimal("10"), note="a", created_by="t")
            second = entry_append(wallet=locked, kind=kind, amount=Decimal("-3.5"), note="b", created_by="t")
            # then the second entry starts from the first one's balance, and so does the wallet in hand
            assert second.balance_after == Decimal("6.5")
            assert locked.balance == Decimal("6.5")
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("6.5")
        assert list(wallet.entries.values_list("seq", "balance_after")) == [(1, Decimal("10")), (2, Decimal("6.5"))]
        assert wallets_audit() == []


def test_every_entry_is_counted_once_in_the_ledgers_day_totals(world, db):
    with tenant_context(world.a.agency):
        wallet = wallet_ensure(subaccount=world.a.subaccounts[0])
        # when the wallet gets a credit, a debit, and a second credit
        wallet_adjust(wallet=wallet, amount=Decimal("5"), note="goodwill", by="t")
        wallet_adjust(wallet=wallet, amount=Decimal("-2"), note="fix", by="t")
        wallet_adjust(wallet=wallet, amount=Decimal("1.25"), note="more", by="t")
        # then the day totals hold each entry once, by sign, and only this wallet's
        totals = {row.sign: (row.entries, row.amount) for row in LedgerDayTotal.objects.filter(wallet_id=wallet.pk)}
        assert totals == {1: (2, Decimal("6.25")), -1: (1, Decimal("-2"))}
        assert LedgerDayTotal.objects.exclude(wallet_id=wallet.pk).count() == 0


def test_an_amount_finer_than_a_millionth_is_refused_with_the_reason(world, db):
    with tenant_context(world.a.agency):
        wallet = wallet_ensure(subaccount=world.a.subaccounts[0])
        with pytest.raises(ValidationError, match=r"^\['Amounts have at most 6 decimal places\.'\]$"):
            wallet_adjust(wallet=wallet, amount=Decimal("0.0000001"), note="x", by="t")
        assert not WalletEntry.objects.exists()


@pytest.mark.parametrize(("amount", "note", "reason"), [
    (Decimal("1"), " ", "Say why the wallet is adjusted."),
    (Decimal("0"), "fix", "An adjustment needs a non-zero amount."),
])
def test_an_adjustment_without_a_reason_or_an_amount_is_refused_with_the_reason(world, db, amount, note, reason):
    with tenant_context(world.a.agency):
        wallet = wallet_ensure(subaccount=world.a.subaccounts[0])
        with pytest.raises(ValidationError) as refused:
            wallet_adjust(wallet=wallet, amount=amount, note=note, by="t")
        assert refused.value.messages == [reason]
        assert not WalletEntry.objects.exists()


def test_an_adjustment_of_one_keeps_its_reason_trimmed_to_the_column_and_who_made_it(world, db):
    with tenant_context(world.a.agency):
        wallet = wallet_ensure(subaccount=world.a.subaccounts[0])
        entry = wallet_adjust(wallet=wallet, amount=Decimal("1"), note="  " + "x" * 600 + " ", by="ops@alpha.test")
        assert (entry.kind, entry.amount, entry.note, entry.created_by) == (
            WalletEntry.Kind.ADJUSTMENT, Decimal("1"), "x" * 500, "ops@alpha.test")
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("1")
