"""Two recharge decisions for one agency wallet at once, on committed rows and two connections: one PaymentIntent."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from agency_wallets.charging import agency_charge_execute, agency_wallet_recharge_start
from agency_wallets.models import AgencyCharge, AgencyWallet
from tests.agency_wallets.helpers import agency_wallet_at, agency_wallets_truncate, platform_intents


@pytest.fixture
def committed(world, django_db_blocker, localstripe):
    with django_db_blocker.unblock():
        try:
            yield
        finally:
            agency_wallets_truncate()


def test_two_recharge_decisions_at_once_make_one_payment_intent(world, committed, raw_stripe):
    # given a committed wallet below its threshold, with a card
    wallet = agency_wallet_at(world.a.agency, "1", raw=raw_stripe)
    barrier = threading.Barrier(2)
    started: list[AgencyCharge | None] = []
    errors: list[BaseException] = []

    def decide() -> None:
        try:
            connection.set_schema_to_public()
            barrier.wait(timeout=10)
            charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
            started.append(charge)
            if charge is not None:
                agency_charge_execute(charge_id=charge.pk)
        except BaseException as error:  # noqa: BLE001 — reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # then one charge, one PaymentIntent on the platform's account, one credit
    assert errors == []
    assert len([c for c in started if c is not None]) == 1
    assert len(platform_intents(raw_stripe)) == 1
    connection.set_schema_to_public()
    assert AgencyWallet.objects.get(pk=wallet.pk).balance == Decimal("11")
    assert AgencyCharge.objects.count() == 1
