"""Refunds of a client's succeeded recharge through the agency's Stripe account: the row first, the key ours, one
ledger entry per refund, never beyond what is left."""

from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from tests.billing.fixtures import ACCT_A, ACCT_B, api_requests, on
from tests.wallets.helpers import rebill
from wallets.models import Refund, WalletEntry
from wallets.services import charge_execute, wallet_add_balance_start, wallet_ensure, wallets_audit
from wallets.services.refunds import RefundRefused, charge_refund, refund_execute, refund_start

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
