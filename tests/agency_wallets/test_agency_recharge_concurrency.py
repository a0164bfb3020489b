"""Two recharge decisions for one agency wallet at once, on committed rows and two connections: one PaymentIntent."""

from decimal import Decimal

import pytest
from django.db import connection

from agency_wallets.charging import agency_charge_execute, agency_wallet_recharge_start
from agency_wallets.models import AgencyCharge, AgencyWallet
from tests.agency_wallets.helpers import agency_wallet_at, agency_wallets_truncate, platform_intents
from tests.concurrency import run_at_once


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
    def decide() -> AgencyCharge | None:
        connection.set_schema_to_public()
        charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
        if charge is not None:
            agency_charge_execute(charge_id=charge.pk)
        return charge

    started = run_at_once(decide, threads=2, timeout=120)

    # then one charge, one PaymentIntent on the platform's account, one credit
    assert len([c for c in started if c is not None]) == 1
    assert len(platform_intents(raw_stripe)) == 1
    connection.set_schema_to_public()
    assert AgencyWallet.objects.get(pk=wallet.pk).balance == Decimal("11")
    assert AgencyCharge.objects.count() == 1
