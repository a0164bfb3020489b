"""A client with a varied wallet history, and the ledger's figures computed straight from SQL."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from django.db import connection
from django_tenants.utils import tenant_context

from agencies.plans import Product
from subaccounts.models import SubAccount
from tests.billing.fixtures import ACCT_A, ACCT_B
from tests.conftest import AgencyWorld, client_for
from tests.wallets.helpers import add_delta, rebill
from wallets.services import wallet_adjust, wallet_ensure, wallet_rate

INJECTION = '=HYPERLINK("http://evil.test","click")'


def history(agency_world: AgencyWorld, raw_stripe, *, index: int = 0, secret: str = "", top_up: bool = True
            ) -> SubAccount:
    account_id = ACCT_A if agency_world.domain.startswith("alpha") else ACCT_B
    with tenant_context(agency_world.agency):
        client = agency_world.subaccounts[index]
        rebill(client, account_id=account_id, raw=raw_stripe)
        add_delta(client, "2.00", product=Product.SMS, units="10")
        add_delta(client, "1.234567", product=Product.CALLS, units="3")
        add_delta(client, "0.333333", product=Product.MMS, units="1")
        wallet_rate(subaccount_id=client.pk)
        add_delta(client, "-0.40", product=Product.SMS, units="-2")  # a correction: a usage credit
        wallet_rate(subaccount_id=client.pk)
        wallet_adjust(wallet=wallet_ensure(subaccount=client), amount=Decimal("5.00"),
                      note=secret or INJECTION, by="support@agency.test")
    if top_up:
        response = client_for(agency_world, agency_world.account_admins[index]).post(
            f"/accounts/{client.pk}/billing/add-balance/", {"amount": "20.00"})
        assert response.status_code == 302
    return client


def ledger(subaccount: SubAccount, where: str = "TRUE", params: tuple = ()) -> dict[str, Decimal | int]:
    """Figures of one wallet straight from SQL (the caller is in the agency's schema)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(amount) FILTER (WHERE amount > 0), 0),"
            " coalesce(sum(amount) FILTER (WHERE amount < 0), 0),"
            " coalesce(sum(cost_delta) FILTER (WHERE usage_delta_id IS NOT NULL), 0),"
            " coalesce(sum(-amount) FILTER (WHERE usage_delta_id IS NOT NULL), 0)"
            " FROM wallets_walletentry e JOIN wallets_wallet w ON w.id = e.wallet_id"
            f" WHERE w.subaccount_id = %s AND {where}", (subaccount.pk, *params))  # noqa: S608
        count, credits, debits, cost, revenue = cursor.fetchone()
    return {"count": count, "credits": credits, "debits": debits, "cost": cost, "revenue": revenue}


def parse_csv(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))
