"""Refunds of a client's succeeded recharge through the agency's Stripe account: the row first, the key ours, one
ledger entry per refund, never beyond what is left."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from django_tenants.utils import tenant_context

from stripe_connect.gateway import AgencyStripe
from tests.billing.fixtures import ACCT_A, ACCT_B, api_requests, on
from tests.wallets.helpers import rebill
from wallets.models import Refund, WalletEntry
from wallets.services import charge_execute, wallet_add_balance_start, wallet_ensure, wallets_audit
from wallets.services.refunds import RefundRefused, charge_refund, refund_execute, refund_start, refunds_to_resume
from wallets.tasks import refund_resume_task, wallet_charges_maintain_agency

pytestmark = pytest.mark.django_db


def _paid(client, raw_stripe, amount="20.00"):
    rebill(client, account_id=ACCT_A, raw=raw_stripe)
    wallet = wallet_ensure(subaccount=client)
    charge = charge_execute(charge_id=wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal(amount),
                                                               by="owner").pk)
    assert charge.status == "succeeded"
    return wallet, charge


def test_part_then_the_rest_is_refunded_once_each_and_never_more(world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        wallet, charge = _paid(world.a.subaccounts[0], raw_stripe)

        # when the agency admin refunds 7.50, the refund is executed twice, then the remaining 12.50
        first = refund_start(charge_id=charge.pk, amount=Decimal("7.50"), by=world.a.admin)
        refund_execute(refund_id=first.pk)
        refund_execute(refund_id=first.pk)
        rest = charge_refund(charge_id=charge.pk, amount=Decimal("12.50"), by=world.a.admin)

        # then Stripe has two refunds on the charge's PaymentIntent, on agency A's account, with our keys
        refunds = raw_stripe.v1.refunds.list(options=on(ACCT_A)).data
        assert sorted(r.amount for r in refunds) == [750, 1250]
        posts = [r for r in api_requests(localstripe) if r["path"] == "/v1/refunds" and r["method"] == "POST"]
        assert {r["idempotency_key"] for r in posts} == {first.idempotency_key, rest.idempotency_key}
        assert all(r["stripe_account"] == ACCT_A for r in posts)
        assert first.idempotency_key == f"refund:{world.a.agency.schema_name}:{first.pk}"
        # and the wallet has one refund entry per refund, and is back where it started
        wallet.refresh_from_db()
        entries = WalletEntry.objects.filter(wallet=wallet, kind=WalletEntry.Kind.REFUND)
        assert sorted(e.amount for e in entries) == [Decimal("-12.50"), Decimal("-7.50")]
        assert wallet.balance == 0 and wallets_audit() == []

        # and nothing more can be refunded: a clear error, nothing changed
        with pytest.raises(RefundRefused, match="At most 0.00"):
            refund_start(charge_id=charge.pk, amount=Decimal("0.01"), by=world.a.admin)
        assert Refund.objects.count() == 2
    assert raw_stripe.v1.refunds.list(options=on(ACCT_B)).data == []


def test_bad_refunds_are_refused_and_change_nothing(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        wallet, charge = _paid(world.a.subaccounts[0], raw_stripe, amount="5.00")
        for amount, message in ((Decimal("5.01"), "At most 5.00"), (Decimal("0"), "above zero"),
                                (Decimal("-1"), "above zero"), (Decimal("1.001"), "whole cents")):
            with pytest.raises(RefundRefused, match=message):
                refund_start(charge_id=charge.pk, amount=amount, by=world.a.admin)
        with pytest.raises(PermissionError):
            refund_start(charge_id=charge.pk, amount=Decimal("1"), by=world.a.agency_user)
        assert not Refund.objects.exists()
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("5")
    assert raw_stripe.v1.refunds.list(options=on(ACCT_A)).data == []


def test_refunds_left_started_by_a_crash_are_resumed_once_whether_stripe_was_reached_or_not(
        world, connected, raw_stripe, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        wallet, charge = _paid(world.a.subaccounts[0], raw_stripe)
        # given a refund whose process died before calling Stripe, and one that died after Stripe refunded it
        before = refund_start(charge_id=charge.pk, amount=Decimal("3.00"), by=world.a.admin)
        after = refund_start(charge_id=charge.pk, amount=Decimal("5.00"), by=world.a.admin)
        AgencyStripe(ACCT_A).refund_create(
            payment_intent_id=charge.payment_intent_id, amount=after.amount, currency=charge.currency,
            metadata={"rebill_refund": after.idempotency_key}, idempotency_key=after.idempotency_key)
        # a refund that may still be on its way is left alone
        assert refunds_to_resume() == []

        with time_machine.travel(timezone.now() + timedelta(minutes=11)):
            # when the maintenance job runs, and each refund's job arrives twice
            with django_capture_on_commit_callbacks() as callbacks:
                wallet_charges_maintain_agency()
            assert len(callbacks) == 2
            for refund in (before, after, before, after):
                refund_resume_task(refund.pk)
            # then nothing is left for the next run
            assert refunds_to_resume() == []

        # then Stripe made each refund once, and the wallet recorded each once
        refunds = raw_stripe.v1.refunds.list(options=on(ACCT_A)).data
        assert sorted(r.amount for r in refunds) == [300, 500]
        assert set(Refund.objects.values_list("status", flat=True)) == {Refund.Status.SUCCEEDED}
        entries = WalletEntry.objects.filter(wallet=wallet, kind=WalletEntry.Kind.REFUND)
        assert sorted(e.amount for e in entries) == [Decimal("-5.00"), Decimal("-3.00")]
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("12") and wallets_audit() == []


def test_a_refund_stuck_past_stripes_key_window_is_left_for_a_person_never_sent_again(
        world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        _, charge = _paid(world.a.subaccounts[0], raw_stripe)
        stuck = refund_start(charge_id=charge.pk, amount=Decimal("3.00"), by=world.a.admin)
        with time_machine.travel(timezone.now() + timedelta(hours=24)):
            assert refund_resume_task(stuck.pk) == Refund.Status.STARTED
        assert not [r for r in api_requests(localstripe) if r["path"] == "/v1/refunds" and r["method"] == "POST"]
