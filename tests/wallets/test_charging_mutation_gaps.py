"""wallets/services/charging.py where the rest of the suite does not look: what the client may type in Add balance
and the reason shown for each refusal, which charges the reconciler picks up, and a confirmation refused once the
agency moved to another Stripe account."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import BillingProfile
from stripe_connect.models import ConnectedAccount
from tests.billing.fixtures import ACCT_A, on
from tests.wallets.helpers import rebill, recharge_held_by_the_bank
from wallets.models import Charge
from wallets.services import (
    RechargeRefused,
    charge_execute,
    wallet_add_balance_start,
    wallet_adjust,
    wallet_ensure,
    wallet_recharge_start,
)
from wallets.services.charging import (
    add_balance_amount,
    charge_awaiting_confirmation,
    charge_confirmation_secret,
    charge_confirmed_on_session,
    charges_to_reconcile,
)


@pytest.mark.parametrize(("typed", "amount"), [
    ("25", Decimal("25")),
    (" $25.00 ", Decimal("25.00")),
    ("1,234.50", Decimal("1234.50")),
    ("$1,000", Decimal("1000")),
    ("0.50", Decimal("0.50")),  # the smallest
    ("10000.00", Decimal("10000.00")),  # the largest
])
def test_add_balance_reads_what_a_person_types(typed, amount):
    assert add_balance_amount(typed, currency="usd") == amount


@pytest.mark.parametrize(("typed", "reason"), [
    ("abc", "Enter an amount, e.g. 25.00."),
    ("1e3", "Enter an amount, e.g. 25.00."),
    ("-5", "Enter an amount, e.g. 25.00."),
    ("25$", "Enter an amount, e.g. 25.00."),
    ("10.001", "Use whole cents."),
    ("0.49", "The smallest amount is $0.50."),
    ("10000.01", "Add at most $10,000 at a time."),
])
def test_add_balance_refuses_with_the_reason_the_page_shows(typed, reason):
    with pytest.raises(RechargeRefused) as refused:
        add_balance_amount(typed, currency="usd")
    assert refused.value.messages == [reason]


def _charge(wallet, status: str, *, age: timedelta) -> Charge:
    charge = Charge.objects.create(wallet=wallet, kind=Charge.Kind.MANUAL, status=status, amount=Decimal("5"),
                                   currency="usd", stripe_account_id=ACCT_A, stripe_customer_id="cus_test",
                                   payment_method_id="pm_test")
    Charge.objects.filter(pk=charge.pk).update(idempotency_key=f"charge:test:{charge.pk}",
                                               created_at=timezone.now() - age)
    return charge


def test_the_reconciler_picks_up_charges_left_in_flight_for_ten_minutes(world, db):
    with tenant_context(world.a.agency):
        first, second = (wallet_ensure(subaccount=s) for s in world.a.subaccounts)
        # given charges left started and processing for more than ten minutes, and charges that are settled
        started = _charge(first, Charge.Status.STARTED, age=timedelta(minutes=11))
        processing = _charge(second, Charge.Status.PROCESSING, age=timedelta(minutes=30))
        _charge(first, Charge.Status.SUCCEEDED, age=timedelta(hours=1))
        _charge(second, Charge.Status.FAILED, age=timedelta(hours=1))
        # then the reconciler picks up the two left in flight
        assert charges_to_reconcile() == [started.pk, processing.pk]

        # when the processing one has settled and another has just started
        Charge.objects.filter(pk=processing.pk).update(status=Charge.Status.SUCCEEDED)
        fresh = _charge(second, Charge.Status.PROCESSING, age=timedelta(minutes=1))
        # then the fresh one is left to the worker making it, unless the reconciler is told a shorter wait
        assert charges_to_reconcile() == [started.pk]
        assert charges_to_reconcile(older_than=timedelta(seconds=30)) == [started.pk, fresh.pk]


def test_a_confirmation_is_refused_once_the_agency_connected_another_stripe_account(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a recharge the bank asked the card holder to confirm
        client = world.a.subaccounts[0]
        wallet, charge = recharge_held_by_the_bank(client, raw=raw_stripe)
        assert charge.failure_code == "authentication_required"
        # (its PaymentIntent names our charge and the wallet it credits)
        intent = raw_stripe.v1.payment_intents.retrieve(charge.payment_intent_id, options=on(ACCT_A))
        assert intent.metadata.to_dict() == {"rebill_charge": charge.idempotency_key, "rebill_wallet": str(wallet.pk)}
        assert charge_confirmation_secret(charge=charge).startswith(charge.payment_intent_id + "_secret_")

        # when the agency connects another Stripe account
        ConnectedAccount.objects.filter(agency=world.a.agency).update(account_id="acct_1Another000000000")

        # then the client is told why the payment cannot be confirmed here, on the page and when posting
        moved = "The agency connected another Stripe account after this charge started."
        with pytest.raises(RechargeRefused) as refused:
            charge_confirmation_secret(charge=charge)
        assert refused.value.messages == [moved]
        with pytest.raises(RechargeRefused) as refused:
            charge_confirmed_on_session(charge_id=charge.pk)
        assert refused.value.messages == [moved]

        # and once the agency has no Stripe account at all
        ConnectedAccount.objects.filter(agency=world.a.agency).delete()
        with pytest.raises(RechargeRefused) as refused:
            charge_confirmed_on_session(charge_id=charge.pk)
        assert refused.value.messages == ["The agency's Stripe account is no longer connected."]
        charge.refresh_from_db()
        assert charge.status == Charge.Status.FAILED


def test_only_this_charge_waiting_for_the_card_holder_is_offered_for_confirmation(world, db):
    with tenant_context(world.a.agency):
        wallet = wallet_ensure(subaccount=world.a.subaccounts[0])
        # given failed charges: two waiting for the card holder, one declined, one that never reached Stripe
        waiting = _charge(wallet, Charge.Status.FAILED, age=timedelta(hours=2))
        newer = _charge(wallet, Charge.Status.FAILED, age=timedelta(hours=1))
        declined = _charge(wallet, Charge.Status.FAILED, age=timedelta(hours=1))
        unsent = _charge(wallet, Charge.Status.FAILED, age=timedelta(hours=1))
        for charge, code, intent in ((waiting, "authentication_required", "pi_waiting"),
                                     (newer, "authentication_required", "pi_newer"),
                                     (declined, "card_declined", "pi_declined"),
                                     (unsent, "authentication_required", "")):
            Charge.objects.filter(pk=charge.pk).update(failure_code=code, payment_intent_id=intent)

        # then each is found by its own id, and only those the card holder can still confirm
        assert charge_awaiting_confirmation(wallet=wallet, charge_id=waiting.pk) == waiting
        assert charge_awaiting_confirmation(wallet=wallet, charge_id=newer.pk) == newer
        assert charge_awaiting_confirmation(wallet=wallet, charge_id=declined.pk) is None
        assert charge_awaiting_confirmation(wallet=wallet, charge_id=unsent.pk) is None
        # and never through another wallet
        other = wallet_ensure(subaccount=world.a.subaccounts[1])
        assert charge_awaiting_confirmation(wallet=other, charge_id=waiting.pk) is None


def test_a_client_without_a_card_is_never_charged_on_another_clients_card(world, connected):
    with tenant_context(world.a.agency):
        # given client 1 rebilled but its card removed (its customer kept), and client 2 with a card on file
        client, other = world.a.subaccounts
        rebill(client, account_id=ACCT_A)
        BillingProfile.objects.filter(subaccount=client).update(
            stripe_customer_id="cus_cardless", card_payment_method_id="", card_last4="")
        rebill(other, account_id=ACCT_A)
        wallet = wallet_ensure(subaccount=client)
        wallet_adjust(wallet=wallet, amount=Decimal("-1"), note="usage beyond the balance", by="t")

        # then neither the auto-recharge nor Add balance starts a charge for client 1
        assert wallet_recharge_start(wallet_id=wallet.pk) is None
        with pytest.raises(RechargeRefused) as refused:
            wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("20"), by="owner")
        assert refused.value.messages == ["Add a card first."]
        assert not Charge.objects.exists()


def test_the_credit_of_a_charge_says_who_asked_and_which_payment_paid(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        wallet = wallet_ensure(subaccount=client)
        # when the account admin adds balance, and later the auto-recharge tops the wallet up
        manual = charge_execute(charge_id=wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("20"),
                                                                   by="owner1@alpha-client.test").pk)
        wallet_adjust(wallet=wallet, amount=Decimal("-25"), note="usage", by="t")
        automatic = charge_execute(charge_id=wallet_recharge_start(wallet_id=wallet.pk).pk)
        # then each credit names the person (or the auto-recharge) who asked, and the PaymentIntent that paid
        assert (manual.requested_by, automatic.requested_by) == ("owner1@alpha-client.test", "auto-recharge")
        credits = [(entry.kind, entry.created_by, entry.note, entry.charge_id)
                   for entry in wallet.entries.exclude(charge=None).order_by("seq")]
        assert credits == [
            ("manual_top_up", "owner1@alpha-client.test", f"Card charged ({manual.payment_intent_id})", manual.pk),
            ("recharge", "auto-recharge", f"Card charged ({automatic.payment_intent_id})", automatic.pk),
        ]


def test_add_balance_refuses_a_card_saved_on_a_stripe_account_no_longer_connected(world, connected):
    with tenant_context(world.a.agency):
        # given the client's card was saved while the agency was connected to another Stripe account
        client = world.a.subaccounts[0]
        rebill(client, account_id="acct_1PreviousAccount00")
        wallet = wallet_ensure(subaccount=client)
        # then Add balance asks for a card on the current account, and charges nothing
        with pytest.raises(RechargeRefused) as refused:
            wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("20"), by="owner")
        assert refused.value.messages == ["Add a card first."]
        assert not Charge.objects.exists()


def test_add_balance_says_why_it_cannot_charge_now(world, connected):
    with tenant_context(world.a.agency):
        # given client 1 whose payment is in flight
        paying, other = world.a.subaccounts
        rebill(paying, account_id=ACCT_A)
        wallet = wallet_ensure(subaccount=paying)
        wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("20"), by="owner")
        # then a second payment waits for it, saying so
        with pytest.raises(RechargeRefused) as refused:
            wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("5"), by="owner")
        assert refused.value.messages == ["A payment is already in progress for this account. Please wait a moment."]

        # and once the agency has no Stripe account, client 2 is told card payments are not set up
        ConnectedAccount.objects.filter(agency=world.a.agency).delete()
        with pytest.raises(RechargeRefused) as refused:
            wallet_add_balance_start(wallet_id=wallet_ensure(subaccount=other).pk, amount=Decimal("5"), by="owner")
        assert refused.value.messages == ["Card payments are not set up by your agency yet."]
        assert Charge.objects.count() == 1


def test_neither_a_settled_payment_nor_another_clients_payment_in_flight_holds_a_new_one_back(
        world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given client 1's Add balance in flight, and client 2 (add $25 below $30, its own settings) paid before
        other, client = world.a.subaccounts
        rebill(other, account_id=ACCT_A, raw=raw_stripe)
        wallet_add_balance_start(wallet_id=wallet_ensure(subaccount=other).pk, amount=Decimal("20"), by="owner2")
        rebill(client, account_id=ACCT_A, raw=raw_stripe, amount="25", threshold="30")
        wallet = wallet_ensure(subaccount=client)
        paid = charge_execute(charge_id=wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("20"),
                                                                  by="owner").pk)
        assert paid.status == Charge.Status.SUCCEEDED

        # when client 2 adds balance again, then its auto-recharge (balance $25, below its own $30) runs
        again = wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal("5"), by="owner")
        charge_execute(charge_id=again.pk)
        automatic = wallet_recharge_start(wallet_id=wallet.pk)

        # then each starts, for client 2's wallet, by its own settings
        assert (again.wallet_id, again.kind, again.amount) == (wallet.pk, Charge.Kind.MANUAL, Decimal("5"))
        assert (automatic.wallet_id, automatic.kind, automatic.amount, automatic.requested_by) == (
            wallet.pk, Charge.Kind.AUTO_RECHARGE, Decimal("25"), "auto-recharge")
