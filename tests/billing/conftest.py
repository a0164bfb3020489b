from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import connection

from stripe_connect.models import ConnectedAccount
from tests.billing.fixtures import ACCT_A, ACCT_B, localstripe, localstripe_base, raw_stripe  # noqa: F401


@dataclass
class Connected:
    a: ConnectedAccount
    b: ConnectedAccount


@pytest.fixture
def connected(world, db, localstripe) -> Connected:  # noqa: F811
    """Both world agencies connected to their own Stripe account (rolled back after the test)."""
    connection.set_schema_to_public()
    return Connected(
        a=ConnectedAccount.objects.create(agency=world.a.agency, account_id=ACCT_A),
        b=ConnectedAccount.objects.create(agency=world.b.agency, account_id=ACCT_B),
    )
