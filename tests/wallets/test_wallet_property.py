"""Property: any sequence of usage deltas, multiplier changes, rebilling on/off, ratings, recharges (approved and
declined on localstripe), refunds and adjustments keeps balance == Σ entries, bills the client exactly Σ(cost delta ×
multiplier in force when rated), and never bills what was fetched before the switch-on."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agencies.plans import Product, rebilled_amount
from billing.models import BillingProfile
from people.models import User
from rebilling.models import MultiplierOverride, SubAccountRebilling
from tests.billing.fixtures import ACCT_A
from tests.wallets.helpers import DECLINING_CARD, add_delta, rebill
from wallets.models import Charge, Wallet, WalletEntry
from wallets.services import (
    RechargeRefused,
    charge_execute,
    wallet_add_balance_start,
    wallet_adjust,
    wallet_ensure,
    wallet_rate,
    wallets_audit,
)
from wallets.services.refunds import RefundRefused, charge_refund, charge_refundable

PRODUCTS = [Product.SMS, Product.CALLS, Product.MMS]
costs = st.decimals(min_value=Decimal("-5"), max_value=Decimal("20"), places=6, allow_nan=False)
multipliers = st.decimals(min_value=Decimal("1"), max_value=Decimal("10"), places=4, allow_nan=False)
steps = st.lists(st.one_of(
    st.tuples(st.just("delta"), costs, st.sampled_from(PRODUCTS)),
    st.tuples(st.just("multiplier"), multipliers, st.sampled_from(PRODUCTS)),
    st.tuples(st.just("off")), st.tuples(st.just("on")), st.tuples(st.just("rate")),
    st.tuples(st.just("recharge"), st.sampled_from(["good", "declining"])),
    st.tuples(st.just("adjust"), costs.filter(lambda d: d != 0)),
    st.tuples(st.just("refund"), st.sampled_from([Decimal("0.50"), Decimal("2.00"), Decimal("5.00"), Decimal("6")])),
), max_size=25)


class Rollback(Exception):
    pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_any_sequence_keeps_the_ledger_and_bills_exactly(world, connected, raw_stripe, steps):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe, threshold="0")
        cards = {"good": BillingProfile.objects.get(subaccount=client).card_payment_method_id}
        from tests.billing.fixtures import card
        declining = raw_stripe.v1.payment_methods.create(params={"type": "card", "card": card(DECLINING_CARD)},
                                                         options={"stripe_account": ACCT_A})
        raw_stripe.v1.payment_methods.attach(
            declining.id, params={"customer": BillingProfile.objects.get(subaccount=client).stripe_customer_id},
            options={"stripe_account": ACCT_A})
        cards["declining"] = declining.id
        try:
            with transaction.atomic():
                _run(client, steps, cards)
                raise Rollback
        except Rollback:
            pass


def _run(client, steps, cards) -> None:
    clock = timezone.now() - timedelta(days=1)

    def tick():
        nonlocal clock
        clock += timedelta(seconds=1)
        return clock

    rebilling = SubAccountRebilling.objects.get(subaccount=client)
    rebilling.switched_on_at = tick()
    rebilling.save()
    pending: list[tuple] = []  # (fetched_at, cost, product)
    multiplier = {p: Decimal("1.05") for p in Product}
    expected_usage = Decimal(0)
    wallet = wallet_ensure(subaccount=client)
    agency_admin = User.objects.filter(role=User.Role.AGENCY_ADMIN).first()
    for step in steps:
        kind = step[0]
        if kind == "delta":
            at = tick()
            add_delta(client, step[1], product=step[2], fetched_at=at)
            pending.append((at, step[1], step[2]))
        elif kind == "multiplier":
            MultiplierOverride.objects.update_or_create(subaccount=client, product=step[2],
                                                        defaults={"multiplier": step[1]})
            multiplier[step[2]] = step[1]
        elif kind == "off":
            SubAccountRebilling.objects.filter(pk=rebilling.pk).update(switched_on=False)
        elif kind == "on":
            if not SubAccountRebilling.objects.get(pk=rebilling.pk).switched_on:
                SubAccountRebilling.objects.filter(pk=rebilling.pk).update(switched_on=True, switched_on_at=tick())
        elif kind == "rate":
            state = SubAccountRebilling.objects.get(pk=rebilling.pk)
            wallet_rate(subaccount_id=client.pk)
            if state.switched_on:
                rated = [p for p in pending if p[0] >= state.switched_on_at]
                expected_usage += sum((rebilled_amount(cost=c, multiplier=multiplier[prod])
                                       for _, c, prod in rated), Decimal(0))
                pending = [p for p in pending if p[0] < state.switched_on_at]
        elif kind == "recharge":
            BillingProfile.objects.filter(subaccount=client).update(card_payment_method_id=cards[step[1]])
            try:
                charge = wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("5.00"), by="owner")
            except RechargeRefused:
                continue
            charge_execute(charge_id=charge.pk)
        elif kind == "adjust":
            wallet_adjust(wallet=wallet, amount=step[1], note="property", by="t")
        elif kind == "refund":  # of the latest succeeded top-up; beyond what is left it is refused, unchanged
            charge = Charge.objects.filter(wallet=wallet, status=Charge.Status.SUCCEEDED).order_by("-pk").first()
            if charge is None:
                continue
            try:
                charge_refund(charge_id=charge.pk, amount=step[1], by=agency_admin)
            except RefundRefused:
                assert step[1] > charge_refundable(charge=charge)

    wallet = Wallet.objects.get(pk=wallet.pk)
    entries = WalletEntry.objects.filter(wallet=wallet)
    # balance == Σ entries
    assert wallet.balance == sum((e.amount for e in entries), Decimal(0))
    assert wallets_audit() == []
    # client debits == Σ(cost delta × multiplier in force when rated)
    usage = entries.filter(kind__in=WalletEntry.USAGE_KINDS)
    assert -sum((e.amount for e in usage), Decimal(0)) == expected_usage
    # nothing fetched before a switch-on that applied is billed: every usage entry is after its period's start
    assert all(e.usage_delta.fetched_at >= rebilling.switched_on_at for e in usage.select_related("usage_delta"))
    # recharges credited once each, only for charges that succeeded
    for entry in entries.filter(kind=WalletEntry.Kind.MANUAL_TOP_UP):
        assert entry.charge.status == "succeeded"
    # refunds: one entry per succeeded refund, never more than the charge
    for charge in Charge.objects.filter(wallet=wallet):
        refunded = -sum((e.amount for e in entries.filter(kind=WalletEntry.Kind.REFUND, charge=charge)), Decimal(0))
        assert refunded == sum((r.amount for r in charge.refunds.filter(status="succeeded")), Decimal(0))
        assert refunded <= charge.amount
