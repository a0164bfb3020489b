"""Charging on the agency's account (localstripe behind our layer: idempotency and Stripe-Account separation)."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from stripe_connect.gateway import AgencyStripe
from tests.billing.fixtures import ACCT_A, ACCT_B, api_requests, on
from tests.wallets.helpers import DECLINING_CARD, rebill
from wallets.models import Charge, Wallet, WalletEntry
from wallets.services import (
    RechargeRefused,
    charge_execute,
    charge_reconcile,
    charge_record_from_stripe,
    wallet_add_balance_start,
    wallet_adjust,
    wallet_ensure,
    wallet_recharge_start,
    wallets_audit,
)
from wallets.services.suspension import wallet_card_replaced


def _pis(raw, account):
    return raw.v1.payment_intents.list(params={"limit": 100}, options=on(account)).data


def _wallet_at(subaccount, balance: str) -> Wallet:
    wallet = wallet_ensure(subaccount=subaccount)
    if Decimal(balance):
        wallet_adjust(wallet=wallet, amount=Decimal(balance), note="test balance", by="t")
    wallet.refresh_from_db()
    return wallet


def test_auto_recharge_closes_the_shortfall_in_one_charge_credited_once(world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        # given a wallet at -3.141 with "add $10 when below $10"
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        wallet = _wallet_at(client, "-3.141")

        # when the recharge decision runs twice, and the charge is executed twice
        charge = wallet_recharge_start(wallet_id=wallet.pk)
        assert wallet_recharge_start(wallet_id=wallet.pk) is None  # one in flight
        assert charge is not None and charge.status == Charge.Status.STARTED
        assert charge.idempotency_key == f"charge:{world.a.agency.schema_name}:{charge.pk}"
        charge_execute(charge_id=charge.pk)
        charge_execute(charge_id=charge.pk)

        # then one PaymentIntent of $13.15 (10 + 3.141, rounded up to the cent) on agency A's account
        [intent] = _pis(raw_stripe, ACCT_A)
        assert intent.amount == 1315 and intent.status == "succeeded"
        assert intent.metadata["rebill_charge"] == charge.idempotency_key
        # and the wallet credited once, even when the webhook's copy arrives after the answer
        charge_record_from_stripe(intent=AgencyStripe(ACCT_A).payment_intent_retrieve(intent.id))
        charge.refresh_from_db()
        wallet.refresh_from_db()
        assert charge.status == Charge.Status.SUCCEEDED and charge.payment_intent_id == intent.id
        assert wallet.balance == Decimal("10.009")
        assert WalletEntry.objects.filter(kind=WalletEntry.Kind.RECHARGE).count() == 1
        assert wallets_audit() == []
    # and nothing reached agency B's account
    assert _pis(raw_stripe, ACCT_B) == []
    assert {r["stripe_account"] for r in api_requests(localstripe)
            if "payment_intents" in r["path"] and r["method"] == "POST"} == {ACCT_A}


def test_no_recharge_above_the_threshold_or_without_a_card_on_the_current_account(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        wallet = _wallet_at(client, "10")
        assert wallet_recharge_start(wallet_id=wallet.pk) is None
        wallet_adjust(wallet=wallet, amount=Decimal("-0.01"), note="below", by="t")
        client.billing_profile.stripe_account_id = ACCT_B
        client.billing_profile.save()
        assert wallet_recharge_start(wallet_id=wallet.pk) is None
        assert not Charge.objects.exists()
    assert _pis(raw_stripe, ACCT_A) == []


def test_a_decline_is_recorded_emailed_and_retried_at_1h_6h_24h_then_a_new_card_pays(
        world, connected, raw_stripe, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        # given a client whose card declines when charged, balance positive but below the threshold
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe, card_number=DECLINING_CARD)
        wallet = _wallet_at(client, "2")

        # when the auto-recharge runs
        with django_capture_on_commit_callbacks(execute=True):
            charge = wallet_recharge_start(wallet_id=wallet.pk)
            charge_execute(charge_id=charge.pk)

        # then the charge records Stripe's decline, the wallet shows it, a retry is due in 1 hour
        charge.refresh_from_db()
        wallet.refresh_from_db()
        assert charge.status == Charge.Status.FAILED and charge.failure_code == "card_declined"
        assert wallet.recharge_state == Wallet.RechargeState.FAILED
        assert timedelta(minutes=59) < wallet.next_retry_at - timezone.now() <= timedelta(hours=1)
        assert wallet.balance == Decimal("2")
        # and the account admins and agency admins are emailed (not the account's plain users, not agency B)
        [email] = mail.outbox
        assert set(email.to) == {world.a.account_admins[0].email, world.a.admin.email}
        assert "failed" in email.subject
        # and no new recharge starts before the retry is due
        assert wallet_recharge_start(wallet_id=wallet.pk) is None
        assert wallet_recharge_start(wallet_id=wallet.pk, retry=True) is None

        # when the retries come due, each fails again: 6 h, then 24 h, then none
        waits = []
        for _ in range(3):
            with time_machine.travel(wallet.next_retry_at + timedelta(seconds=1), tick=False):
                with django_capture_on_commit_callbacks(execute=True):
                    retry = wallet_recharge_start(wallet_id=wallet.pk, retry=True)
                    charge_execute(charge_id=retry.pk)
                wallet.refresh_from_db()
                waits.append(wallet.next_retry_at - timezone.now() if wallet.next_retry_at else None)
        assert waits == [timedelta(hours=6), timedelta(hours=24), None]
        assert Charge.objects.filter(status=Charge.Status.FAILED).count() == 4
        assert len(_pis(raw_stripe, ACCT_A)) == 4

        # when the client adds a working card
        from tests.billing.fixtures import card
        pm = raw_stripe.v1.payment_methods.create(params={"type": "card", "card": card()}, options=on(ACCT_A))
        raw_stripe.v1.payment_methods.attach(pm.id, params={"customer": client.billing_profile.stripe_customer_id},
                                             options=on(ACCT_A))
        client.billing_profile.card_payment_method_id = pm.id
        client.billing_profile.save()
        charge = wallet_card_replaced(subaccount_id=client.pk)
        charge_execute(charge_id=charge.pk)

        # then it is charged at once and the wallet is healthy again
        wallet.refresh_from_db()
        assert wallet.recharge_state == Wallet.RechargeState.OK and wallet.balance == Decimal("12")
        assert wallets_audit() == []
    with tenant_context(world.b.agency):
        assert not Charge.objects.exists()


def test_add_balance_refuses_bad_amounts_and_charges_good_ones(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        wallet = _wallet_at(client, "50")
        for bad in ("0.49", "abc", "NaN", "1e3", "10.001", "-5", "100000"):
            with pytest.raises(RechargeRefused):
                wallet_add_balance_start(wallet_id=wallet.pk, amount=bad, by="owner")  # type: ignore[arg-type]
        assert not Charge.objects.exists()
        charge = wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("25.00"), by="owner")
        with pytest.raises(RechargeRefused):  # one in flight
            wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("5.00"), by="owner")
        charge_execute(charge_id=charge.pk)
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("75")
        assert wallet.entries.last().kind == WalletEntry.Kind.MANUAL_TOP_UP
    assert [pi.amount for pi in _pis(raw_stripe, ACCT_A)] == [2500]


def test_a_stuck_charge_is_settled_by_looking_it_up_never_by_charging_again(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        wallet = _wallet_at(client, "1")
        # given a charge Stripe accepted but whose answer we never recorded (a crash after the call)
        charge = wallet_recharge_start(wallet_id=wallet.pk)
        AgencyStripe(ACCT_A).payment_intent_create_off_session(
            amount=charge.amount, currency="usd", customer_id=charge.stripe_customer_id,
            payment_method_id=charge.payment_method_id,
            metadata={"rebill_charge": charge.idempotency_key, "rebill_wallet": str(wallet.pk)},
            idempotency_key=charge.idempotency_key)
        # and another wallet's charge that never reached Stripe, started two hours ago
        other = _wallet_at(world.a.subaccounts[1], "1")
        rebill(world.a.subaccounts[1], account_id=ACCT_A, raw=raw_stripe)
        with time_machine.travel(timezone.now() - timedelta(hours=2)):
            lost = wallet_recharge_start(wallet_id=other.pk)

        # when the reconciler runs (twice)
        for _ in range(2):
            charge_reconcile(charge_id=charge.pk)
            charge_reconcile(charge_id=lost.pk)

        # then the first is credited once from its PaymentIntent; the second abandoned; no new PaymentIntent
        charge.refresh_from_db()
        lost.refresh_from_db()
        assert charge.status == Charge.Status.SUCCEEDED
        assert lost.status == Charge.Status.ABANDONED
        assert len(_pis(raw_stripe, ACCT_A)) == 1
        assert Wallet.objects.get(pk=wallet.pk).balance == Decimal("11")
        assert wallets_audit() == []
