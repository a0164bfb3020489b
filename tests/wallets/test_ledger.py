"""The ledger's invariants are the database's: insert-only, chained, balance == Σ entries."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, transaction
from django.db.utils import DatabaseError
from django_tenants.utils import tenant_context

from wallets.models import Wallet, WalletEntry
from wallets.services import wallet_adjust, wallet_ensure, wallets_audit


def test_entries_move_the_balance_and_the_audit_agrees(world, db):
    with tenant_context(world.a.agency):
        # given a wallet
        wallet = wallet_ensure(subaccount=world.a.subaccounts[0])
        # when it is adjusted up and down
        wallet_adjust(wallet=wallet, amount=Decimal("5.123456"), note="goodwill", by="admin@alpha.test")
        wallet_adjust(wallet=wallet, amount=Decimal("-1.000001"), note="fix", by="admin@alpha.test")
        # then the balance is the sum of the entries, chained
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("4.123455")
        assert list(wallet.entries.values_list("seq", "balance_after")) == [
            (1, Decimal("5.123456")), (2, Decimal("4.123455"))]
        assert wallets_audit() == []
    with tenant_context(world.b.agency):
        assert not Wallet.objects.exists()


@pytest.mark.parametrize("sql", [
    "UPDATE wallets_walletentry SET amount = 100",
    "DELETE FROM wallets_walletentry",
    "UPDATE wallets_wallet SET balance = balance + 1",
    "INSERT INTO wallets_walletentry (wallet_id, seq, kind, amount, balance_after, product, category, "
    "provider_account, note, created_by, created_at) SELECT id, 2, 'adjustment', 1, 99, '', '', '', '', '', now() "
    "FROM wallets_wallet",
])
def test_the_database_refuses_anything_that_breaks_the_ledger(world, db, sql):
    from django.db import connection

    with tenant_context(world.a.agency):
        # given a wallet with one entry
        wallet = wallet_ensure(subaccount=world.a.subaccounts[0])
        wallet_adjust(wallet=wallet, amount=Decimal("3"), note="start", by="t")
        # when raw SQL tries to edit, delete, move the balance alone or break the chain
        with pytest.raises((IntegrityError, InternalError, DatabaseError)), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
        # then nothing changed
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("3")
        assert list(WalletEntry.objects.values_list("amount", flat=True)) == [Decimal("3")]


def test_an_adjustment_needs_a_reason_and_an_amount_and_changes_nothing_otherwise(world, db):
    from django.core.exceptions import ValidationError

    with tenant_context(world.a.agency):
        wallet = wallet_ensure(subaccount=world.a.subaccounts[0])
        for amount, note in ((Decimal("1"), " "), (Decimal("0"), "x"), (Decimal("0.0000001"), "x")):
            with pytest.raises(ValidationError):
                wallet_adjust(wallet=wallet, amount=amount, note=note, by="t")
        assert not WalletEntry.objects.exists()
