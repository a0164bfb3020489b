"""The agency's auto-recharge on the platform's Stripe account, on a real Celery worker killed by SIGKILL at each
point where money could be lost or taken twice — before the Stripe call, after Stripe succeeded but before our
commit, after our commit before the ack — with the task and the platform's webhook arriving again: one
PaymentIntent per charge, each credited once."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from decimal import Decimal

import pytest

from agency_wallets.charging import agency_charge_record_from_stripe, agency_wallet_recharge_start
from agency_wallets.models import AgencyCharge, AgencyWallet, AgencyWalletEntry
from agency_wallets.tasks import agency_charge_execute_task
from stripe_connect.gateway import PlatformStripe
from tests.agency_wallets.helpers import agency_wallet_at, agency_wallets_truncate, platform_intents
from tests.crash_worker import CRASH_QUEUE, crash_worker_running, wait_until
from wallets.crashpoints import POINTS, crash_arm, crash_disarm, crash_remaining

CRASHES_PER_ROUND = 2
DUPLICATE_TASKS = 2


@pytest.fixture
def crash_worker(world, django_db_blocker, localstripe, tmp_path) -> Iterator[subprocess.Popen]:
    with django_db_blocker.unblock():
        try:
            with crash_worker_running(localstripe=localstripe, log=tmp_path / "crash-worker.log") as process:
                yield process
        finally:
            crash_disarm(queue=CRASH_QUEUE)
            agency_wallets_truncate()


def test_sigkill_at_every_point_charges_the_agency_once_and_credits_once(world, crash_worker, raw_stripe):
    # given the agency's wallet at $1 with a card on the platform's account ("add $10 when below $10")
    wallet = agency_wallet_at(world.a.agency, "1", raw=raw_stripe)
    for round_number, point in enumerate(POINTS):
        # given the wallet below its threshold
        AgencyWallet.objects.filter(pk=wallet.pk).update(auto_recharge_threshold=10 * (round_number + 1) + 5)
        charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
        assert charge is not None
        # when the worker is killed twice at this point while the charge runs, sent twice
        crash_arm(point, CRASHES_PER_ROUND, queue=CRASH_QUEUE)
        for _ in range(2):
            agency_charge_execute_task.apply_async(args=[charge.pk], queue=CRASH_QUEUE)

        def settled(charge_id: int = charge.pk, point: str = point) -> bool:
            return (AgencyCharge.objects.get(pk=charge_id).status == AgencyCharge.Status.SUCCEEDED
                    and crash_remaining(point, queue=CRASH_QUEUE) < 0)

        wait_until(settled, f"the charge through {point}", timeout=90)
        # and the same task and the platform's webhook arrive again
        for result in [agency_charge_execute_task.apply_async(args=[charge.pk], queue=CRASH_QUEUE)
                       for _ in range(DUPLICATE_TASKS)]:
            result.get(timeout=30)
        charge.refresh_from_db()
        for _ in range(2):
            agency_charge_record_from_stripe(intent=PlatformStripe().payment_intent_retrieve(charge.payment_intent_id))

    # then each charge made one PaymentIntent and was credited once: the balance is $1 plus what was charged
    charges = list(AgencyCharge.objects.filter(wallet=wallet).order_by("pk"))
    assert len(charges) == len(POINTS)
    assert all(charge.status == AgencyCharge.Status.SUCCEEDED for charge in charges)
    intents = platform_intents(raw_stripe)
    assert sorted(intent.id for intent in intents) == sorted(charge.payment_intent_id for charge in charges)
    assert all(intent.status == "succeeded" for intent in intents)
    recharges = list(AgencyWalletEntry.objects.filter(wallet=wallet, kind=AgencyWalletEntry.Kind.RECHARGE)
                     .values_list("charge_id", "amount"))
    assert sorted(charge_id for charge_id, _ in recharges) == [charge.pk for charge in charges]
    charged = sum(Decimal(intent.amount) / 100 for intent in intents)
    assert sum(amount for _, amount in recharges) == charged
    wallet.refresh_from_db()
    assert wallet.balance == 1 + charged
