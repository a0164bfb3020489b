"""wallets/services/suspension.py where the rest of the suite does not look: the edges of "balance ≤ 0 and the recharge
failed", and the sub-accounts with nothing at the provider to suspend."""

from __future__ import annotations

from decimal import Decimal

from django_tenants.utils import tenant_context

from agencies.plans import PhoneProvider
from devservices.fake_twilio import account_status, create_account
from phone.models import SubAccountProvider
from tests.phone.conftest import MASTER_SID
from wallets.models import Wallet
from wallets.services import wallet_adjust, wallet_ensure
from wallets.services.suspension import wallet_card_replaced, wallet_suspension_apply

LC_SID = "AC" + "7" * 32


def _on_lc_phone(subaccount, twilio) -> None:
    SubAccountProvider.objects.create(subaccount=subaccount, provider=PhoneProvider.LC_PHONE,
                                      lc_phone_account_sid=LC_SID)
    create_account(twilio.url, LC_SID, "t" * 32, parent_sid=MASTER_SID)


def _wallet(subaccount, *, balance: str, state: str) -> Wallet:
    wallet = wallet_ensure(subaccount=subaccount)
    if Decimal(balance):
        wallet_adjust(wallet=wallet, amount=Decimal(balance), note="test balance", by="t")
    Wallet.objects.filter(pk=wallet.pk).update(recharge_state=state)
    return wallet


def test_zero_with_a_failed_recharge_suspends_and_a_positive_balance_resumes(world, db, twilio):
    with tenant_context(world.a.agency):
        # given an LC Phone client at exactly zero whose recharge failed
        client = world.a.subaccounts[0]
        _on_lc_phone(client, twilio)
        wallet = _wallet(client, balance="0", state=Wallet.RechargeState.FAILED)

        # then its account is suspended
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "suspended"
        assert account_status(twilio.url, LC_SID) == "suspended"
        wallet.refresh_from_db()
        assert wallet.suspended_at is not None

        # when a cent comes in (an adjustment; the recharge still failed), the balance is positive: resumed
        wallet_adjust(wallet=wallet, amount=Decimal("0.01"), note="a cent", by="t")
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "active"
        assert account_status(twilio.url, LC_SID) == "active"
        wallet.refresh_from_db()
        assert wallet.suspended_at is None


def test_a_negative_balance_whose_recharge_has_not_failed_is_not_suspended(world, db, twilio):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        _on_lc_phone(client, twilio)
        # given a client below zero, its recharge in order (e.g. being charged now)
        wallet = _wallet(client, balance="-2", state=Wallet.RechargeState.OK)
        # and a client above zero whose recharge failed
        other = _wallet(world.a.subaccounts[1], balance="3", state=Wallet.RechargeState.FAILED)

        assert wallet_suspension_apply(wallet_id=wallet.pk) == "unchanged"
        assert wallet_suspension_apply(wallet_id=other.pk) == "unchanged"
        assert account_status(twilio.url, LC_SID) == "active"


def test_a_client_without_a_phone_provider_has_nothing_to_suspend(world, db, twilio):
    # (a provider row always has its account: the database refuses one without, see provider_has_its_account)
    with tenant_context(world.a.agency):
        wallet = _wallet(world.a.subaccounts[0], balance="-1", state=Wallet.RechargeState.FAILED)
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "skipped"
        wallet.refresh_from_db()
        assert wallet.suspended_at is None


def test_a_new_card_for_a_client_without_a_wallet_starts_nothing(world, db):
    with tenant_context(world.a.agency):
        assert wallet_card_replaced(subaccount_id=world.a.subaccounts[0].pk) is None
        assert not Wallet.objects.exists()
