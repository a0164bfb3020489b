"""wallets/services/suspension.py where the rest of the suite does not look: the edges of "balance ≤ 0 and the recharge
failed", and the sub-accounts with nothing at the provider to suspend."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.plans import PhoneProvider
from creditusage.models import SpendAlert
from devservices.fake_twilio import account_status, create_account, inject_fault
from phone.models import SubAccountProvider
from phone.usage_client import UsageFetchError
from tests.phone.conftest import MASTER_SID
from tests.queued_jobs import queued as _queued
from wallets.models import Wallet
from wallets.services import wallet_adjust, wallet_ensure
from wallets.services.suspension import _suspended_at_record, wallet_card_replaced, wallet_suspension_apply

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


def _spend_alert(subaccount, *, day: date, paused: bool = True, resumed: bool = False) -> SpendAlert:
    return SpendAlert.objects.create(subaccount=subaccount, day=day, spend=Decimal("90"), trailing_average=Decimal("5"),
                                     multiple=Decimal("3"), floor=Decimal("25"), paused=paused,
                                     resumed_at=timezone.now() if resumed else None,
                                     resumed_by="admin@alpha.test" if resumed else "")


def test_a_paid_wallet_lets_go_but_a_spend_alert_keeps_the_account_suspended(world, db, twilio):
    with tenant_context(world.a.agency):
        # given an LC Phone client suspended for non-payment, whose spend alert has paused it too
        client = world.a.subaccounts[0]
        _on_lc_phone(client, twilio)
        wallet = _wallet(client, balance="-1", state=Wallet.RechargeState.FAILED)
        _spend_alert(client, day=date(2026, 11, 2))
        # (a paused alert does not keep a wallet that must be suspended from suspending it)
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "suspended"
        assert account_status(twilio.url, LC_SID) == "suspended"

        # when the client pays
        wallet_adjust(wallet=wallet, amount=Decimal("5"), note="paid", by="t")
        outcome = wallet_suspension_apply(wallet_id=wallet.pk)

        # then the wallet lets go, and the account stays suspended at Twilio until an agency admin lifts the pause
        assert outcome == "kept paused by a spend alert"
        wallet.refresh_from_db()
        assert wallet.suspended_at is None
        assert account_status(twilio.url, LC_SID) == "suspended"
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "unchanged"


def test_only_an_unlifted_pause_of_this_client_keeps_it_suspended(world, db, twilio):
    with tenant_context(world.a.agency):
        # given a suspended LC Phone client whose pause was lifted, with an alert that paused nothing, and another
        # client paused by its own alert
        client, other = world.a.subaccounts
        _on_lc_phone(client, twilio)
        wallet = _wallet(client, balance="-1", state=Wallet.RechargeState.FAILED)
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "suspended"
        _spend_alert(client, day=date(2026, 11, 2), resumed=True)
        _spend_alert(client, day=date(2026, 11, 3), paused=False)
        _spend_alert(other, day=date(2026, 11, 3))

        # when the client pays
        wallet_adjust(wallet=wallet, amount=Decimal("5"), note="paid", by="t")

        # then it is resumed at Twilio
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "active"
        assert account_status(twilio.url, LC_SID) == "active"
        wallet.refresh_from_db()
        assert wallet.suspended_at is None


def test_each_suspension_and_each_skip_is_logged_with_the_wallet_and_account(world, db, twilio, caplog):
    with tenant_context(world.a.agency):
        client, without_provider = world.a.subaccounts
        _on_lc_phone(client, twilio)
        wallet = _wallet(client, balance="-1", state=Wallet.RechargeState.FAILED)
        skipped = _wallet(without_provider, balance="-1", state=Wallet.RechargeState.FAILED)

        with caplog.at_level(logging.INFO, logger="wallets.services.suspension"):
            wallet_suspension_apply(wallet_id=wallet.pk)
            wallet_suspension_apply(wallet_id=skipped.pk)

        assert [record.getMessage() for record in caplog.records if record.name == "wallets.services.suspension"] == [
            f"Wallet {wallet.pk}: Twilio account {LC_SID} suspended",
            f"Wallet {skipped.pk}: provider not suspended (no phone provider)",
        ]


def test_twilio_refusing_more_often_than_the_configured_attempts_leaves_the_wallet_unsuspended(world, db, twilio):
    with tenant_context(world.a.agency):
        # given an LC Phone client to suspend, and a Twilio that fails as many times as we try (4, set by the fixture)
        client = world.a.subaccounts[0]
        _on_lc_phone(client, twilio)
        wallet = _wallet(client, balance="-1", state=Wallet.RechargeState.FAILED)
        inject_fault(twilio.url, LC_SID, "status", count=4, status=503)

        # when suspension is applied, it fails (the job retries it later) and records nothing
        with pytest.raises(UsageFetchError):
            wallet_suspension_apply(wallet_id=wallet.pk)
        wallet.refresh_from_db()
        assert wallet.suspended_at is None
        assert account_status(twilio.url, LC_SID) == "active"


def test_a_wallet_that_changed_while_twilio_was_called_is_synced_again(world, db, django_capture_on_commit_callbacks,
                                                                       jobs_left_queued):
    with tenant_context(world.a.agency):
        # given a client that paid while its suspension was being made at Twilio, and one that did not
        paid = _wallet(world.a.subaccounts[0], balance="3", state=Wallet.RechargeState.FAILED)
        unpaid = _wallet(world.a.subaccounts[1], balance="-1", state=Wallet.RechargeState.FAILED)

        # when each records the suspension Twilio made
        with django_capture_on_commit_callbacks(execute=True):
            _suspended_at_record(wallet_id=paid.pk, want="suspended")
            _suspended_at_record(wallet_id=unpaid.pk, want="suspended")

        # then both are recorded suspended, and only the paid one is queued to be synced again
        assert Wallet.objects.get(pk=paid.pk).suspended_at is not None
        assert Wallet.objects.get(pk=unpaid.pk).suspended_at is not None
        assert _queued("wallets.tasks.wallet_suspension_sync") == [(world.a.agency.schema_name, [paid.pk])]




def test_an_agencys_main_twilio_account_is_skipped_and_the_log_says_why(world, db, twilio, caplog):
    from phone.crypto import secret_encrypt

    # given a client on the agency's own main Twilio account, at a balance ≤ 0 with the recharge failed
    main_sid, token = "AC" + "6" * 32, "c" * 32
    create_account(twilio.url, main_sid, token)
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        SubAccountProvider.objects.create(subaccount=client, provider=PhoneProvider.TWILIO, twilio_account_sid=main_sid,
                                          twilio_auth_token_encrypted=secret_encrypt(token),
                                          twilio_auth_token_last4=token[-4:])
        wallet = _wallet(client, balance="-1", state=Wallet.RechargeState.FAILED)

        with caplog.at_level(logging.INFO, logger="wallets.services.suspension"):
            outcome = wallet_suspension_apply(wallet_id=wallet.pk)

        # then it is left alone, and the log names the account and why
        assert outcome == "skipped"
        assert account_status(twilio.url, main_sid) == "active"
        assert [record.getMessage() for record in caplog.records if record.name == "wallets.services.suspension"] == [
            f"Wallet {wallet.pk}: provider not suspended ({main_sid} is the agency's main Twilio account: "
            "never suspended)"]


def _on_own_twilio_subaccount(subaccount, twilio) -> str:
    """The client on a subaccount of the agency's own Twilio account; its SID."""
    from phone.crypto import secret_encrypt

    main_sid, sub_sid, token = "AC" + "8" * 32, "AC" + "9" * 32, "d" * 32
    create_account(twilio.url, main_sid, "e" * 32)
    create_account(twilio.url, sub_sid, token, parent_sid=main_sid)
    SubAccountProvider.objects.create(subaccount=subaccount, provider=PhoneProvider.TWILIO, twilio_account_sid=sub_sid,
                                      twilio_auth_token_encrypted=secret_encrypt(token),
                                      twilio_auth_token_last4=token[-4:])
    return sub_sid


def test_a_twilio_slower_than_the_configured_timeout_every_time_leaves_the_wallet_unsuspended(world, db, twilio,
                                                                                           settings):
    # given Twilio calls that give up after 0.2 s, and a Twilio that takes 1 s on each of our 4 attempts
    settings.TWILIO_TIMEOUT_SECONDS = 0.2
    with tenant_context(world.a.agency):
        lc_client, own_client = world.a.subaccounts
        _on_lc_phone(lc_client, twilio)
        own_sid = _on_own_twilio_subaccount(own_client, twilio)
        for sid in (LC_SID, own_sid):
            inject_fault(twilio.url, sid, "sleep", count=4, seconds=1)
        lc_wallet = _wallet(lc_client, balance="-1", state=Wallet.RechargeState.FAILED)
        own_wallet = _wallet(own_client, balance="-1", state=Wallet.RechargeState.FAILED)

        # when suspension is applied: to the LC Phone subaccount, and to the agency's own subaccount (asked about first)
        for wallet in (lc_wallet, own_wallet):
            with pytest.raises(UsageFetchError, match="failed after 4 attempt"):
                wallet_suspension_apply(wallet_id=wallet.pk)

        # then nothing is recorded (the job tries again later)
        assert not Wallet.objects.filter(suspended_at__isnull=False).exists()


def test_an_own_twilio_account_that_keeps_failing_when_asked_about_is_not_suspended(world, db, twilio):
    with tenant_context(world.a.agency):
        # given a client on the agency's own Twilio subaccount, and Twilio answering 503 to our 4 attempts to ask
        client = world.a.subaccounts[0]
        sid = _on_own_twilio_subaccount(client, twilio)
        wallet = _wallet(client, balance="-1", state=Wallet.RechargeState.FAILED)
        inject_fault(twilio.url, sid, "status", count=4, status=503)

        # when suspension is applied, it fails without suspending anything
        with pytest.raises(UsageFetchError):
            wallet_suspension_apply(wallet_id=wallet.pk)
        assert account_status(twilio.url, sid) == "active"
        wallet.refresh_from_db()
        assert wallet.suspended_at is None
