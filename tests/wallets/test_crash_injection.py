"""A real Celery worker (prefork, one child) killed by SIGKILL at the three points where money could be lost or
taken twice — before the Stripe call, after Stripe succeeded but before our commit, after our commit before the
ack — plus duplicate tasks and duplicate webhooks. Restarted each time (acks late, rejected on worker loss):
no delta lost or rated twice, no PaymentIntent created twice, every charge credited once."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from billing.models import BillingProfile
from phone.models import SubAccountProvider, UsageDelta, UsageLine
from rebilling.models import SubAccountRebilling
from stripe_connect.gateway import AgencyStripe
from stripe_connect.models import ConnectedAccount
from tests.billing.fixtures import ACCT_A, ACCT_B, on
from tests.crash_worker import CRASH_QUEUE, crash_worker_running, wait_until
from tests.wallets.helpers import add_delta, rebill, truncate_wallets
from wallets.crashpoints import POINTS, crash_arm, crash_disarm, crash_remaining
from wallets.models import Charge, Refund, Wallet, WalletEntry
from wallets.services import (
    charge_execute,
    charge_record_from_stripe,
    wallet_add_balance_start,
    wallet_ensure,
    wallets_audit,
)
from wallets.services.refunds import refund_start
from wallets.tasks import charge_execute_task, refund_resume_task, wallet_rate_subaccount

ROUNDS = int(os.environ.get("WALLET_CRASH_ROUNDS", "24"))
DUPLICATE_TASKS = 4
CRASHES_PER_ROUND = 3
QUEUE = CRASH_QUEUE


@pytest.fixture
def committed(world, django_db_blocker, localstripe) -> Iterator[None]:
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        accounts = [ConnectedAccount.objects.create(agency=world.a.agency, account_id=ACCT_A),
                    ConnectedAccount.objects.create(agency=world.b.agency, account_id=ACCT_B)]
        try:
            yield
        finally:
            crash_disarm(queue=QUEUE)
            for agency in (world.a.agency, world.b.agency):
                with tenant_context(agency):
                    truncate_wallets()
                    UsageDelta.objects.all().delete()
                    UsageLine.objects.all().delete()
                    SubAccountProvider.objects.all().delete()
                    SubAccountRebilling.objects.all().delete()
                    BillingProfile.objects.all().delete()
            connection.set_schema_to_public()
            for account in accounts:
                account.delete()


@pytest.fixture
def crash_worker(committed, localstripe, tmp_path) -> Iterator[subprocess.Popen]:
    with crash_worker_running(localstripe=localstripe, log=tmp_path / "crash-worker.log", queue=QUEUE) as process:
        yield process


def test_sigkill_at_every_point_loses_nothing_and_charges_once(world, crash_worker, raw_stripe):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe, amount="10", threshold="10")
    crashes = duplicates = 0
    deltas = 0
    for round_number in range(ROUNDS):
        point = POINTS[round_number % len(POINTS)]
        with tenant_context(world.a.agency):
            # given new usage that takes the wallet below its threshold
            for cost in ("7.00", "5.00"):
                add_delta(client, cost)
                deltas += 1
            charges_before = Charge.objects.count()
            # when the worker is killed three times at this point while rating and charging
            crash_arm(point, CRASHES_PER_ROUND, queue=QUEUE)
            for _ in range(2):  # a pull's hook and beat's own run, at once
                wallet_rate_subaccount.apply_async(args=[client.pk], queue=QUEUE)
            duplicates += 1

            def settled(charges_before: int = charges_before, point: str = point) -> bool:
                return (Charge.objects.count() == charges_before + 1
                        and not Charge.objects.filter(status__in=Charge.IN_FLIGHT).exists()
                        and crash_remaining(point, queue=QUEUE) < 0)

            wait_until(settled, f"round {round_number} ({point})")
            crashes += CRASHES_PER_ROUND
            charge = Charge.objects.order_by("-pk").first()
            assert charge is not None and charge.status == Charge.Status.SUCCEEDED, charge
            # and the same charge task and the webhook arrive again
            for result in [charge_execute_task.apply_async(args=[charge.pk], queue=QUEUE)
                           for _ in range(DUPLICATE_TASKS)]:
                result.get(timeout=30)
            for _ in range(2):
                charge_record_from_stripe(
                    intent=AgencyStripe(ACCT_A).payment_intent_retrieve(charge.payment_intent_id))
            duplicates += DUPLICATE_TASKS + 2

    with tenant_context(world.a.agency):
        # then every delta was rated once, every charge made one PaymentIntent and was credited once
        wallet = Wallet.objects.get(subaccount=client)
        assert WalletEntry.objects.filter(usage_delta__isnull=False).count() == deltas
        assert Charge.objects.filter(status=Charge.Status.SUCCEEDED).count() == ROUNDS == Charge.objects.count()
        intents = raw_stripe.v1.payment_intents.list(params={"limit": 100}, options=on(ACCT_A)).auto_paging_iter()
        intents = list(intents)
        assert len(intents) == ROUNDS
        assert {i.metadata["rebill_charge"] for i in intents} == set(
            Charge.objects.values_list("idempotency_key", flat=True))
        assert WalletEntry.objects.filter(kind=WalletEntry.Kind.RECHARGE).count() == ROUNDS
        assert wallet.balance == Decimal("10")  # each round: -12.60 of usage, +12.60 recharged
        assert wallets_audit() == []
    with tenant_context(world.b.agency):
        assert not Charge.objects.exists()
    print(f"\ncrash injection: {crashes} SIGKILLs of the worker, {duplicates} duplicate tasks/webhooks, "
          f"{ROUNDS} charges, {deltas} deltas")
    assert crashes + duplicates >= 200 or ROUNDS < 24


def test_sigkill_around_a_refunds_stripe_call_refunds_once_and_debits_once(world, crash_worker, raw_stripe):
    with tenant_context(world.a.agency):
        # given a client who paid $20
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        wallet = wallet_ensure(subaccount=client)
        charge = charge_execute(charge_id=wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("20.00"),
                                                                   by="owner").pk)
        assert charge.status == Charge.Status.SUCCEEDED
        for point, amount in (("before_stripe", "3.00"), ("after_stripe", "5.00")):
            # when a refund's job is killed twice at this point (the refund row committed before it)
            refund = refund_start(charge_id=charge.pk, amount=Decimal(amount), by=world.a.admin)
            crash_arm(point, CRASHES_PER_ROUND, queue=QUEUE)
            refund_resume_task.apply_async(args=[refund.pk], queue=QUEUE)

            def settled(refund_id: int = refund.pk, point: str = point) -> bool:
                return (Refund.objects.get(pk=refund_id).status == Refund.Status.SUCCEEDED
                        and crash_remaining(point, queue=QUEUE) < 0)

            wait_until(settled, f"the refund through {point}")

        # then Stripe refunded each once, and the wallet was debited once for each
        assert sorted(r.amount for r in raw_stripe.v1.refunds.list(options=on(ACCT_A)).data) == [300, 500]
        assert sorted(WalletEntry.objects.filter(wallet=wallet, kind=WalletEntry.Kind.REFUND)
                      .values_list("amount", flat=True)) == [Decimal("-5.00"), Decimal("-3.00")]
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("12") and wallets_audit() == []
