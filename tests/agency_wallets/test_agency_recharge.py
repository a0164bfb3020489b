"""Auto-recharge of the agency's wallet with the platform, on the platform's own Stripe account: one charge row
committed before Stripe, one PaymentIntent (counted on localstripe), one credit, failures emailed to every agency
admin and retried, stuck charges reconciled by looking up, never by charging again."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from agency_wallets.charging import (
    agency_charge_execute,
    agency_charge_reconcile,
    agency_charge_record_from_stripe,
    agency_wallet_card_replaced,
    agency_wallet_recharge_start,
    agency_wallets_due_for_recharge,
)
from agency_wallets.models import AgencyCharge, AgencyWallet, AgencyWalletEntry
from people.models import User
from stripe_connect.gateway import PlatformStripe
from tests.agency_wallets.helpers import agency_wallet_at, platform_intents
from tests.billing.fixtures import ACCT_A, ACCT_B, api_requests, card, on
from tests.factories import UserFactory
from tests.wallets.helpers import DECLINING_CARD

pytestmark = pytest.mark.django_db


def test_auto_recharge_charges_the_platform_account_once_and_credits_once(world, connected, raw_stripe,
                                                                            localstripe):
    # given agency A's wallet at -3.141 with the default "add $10 when below $10" and a card on the platform account
    wallet = agency_wallet_at(world.a.agency, "-3.141", raw=raw_stripe)
    other = agency_wallet_at(world.b.agency, "0", raw=raw_stripe)

    # when the recharge decision runs twice and the charge is executed twice
    charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
    assert agency_wallet_recharge_start(wallet_id=wallet.pk) is None  # one in flight
    assert charge.status == AgencyCharge.Status.STARTED and charge.idempotency_key == f"agency-charge:{charge.pk}"
    agency_charge_execute(charge_id=charge.pk)
    agency_charge_execute(charge_id=charge.pk)

    # then one PaymentIntent of $13.15 on the platform's own account, carrying the charge's key
    [intent] = platform_intents(raw_stripe)
    assert (intent.amount, intent.status) == (1315, "succeeded")
    assert intent.metadata["rebill_charge"] == charge.idempotency_key
    assert all(r["stripe_account"] is None for r in api_requests(localstripe) if "payment_intents" in r["path"])
    assert raw_stripe.v1.payment_intents.list(options=on(ACCT_A)).data == []
    # and the wallet is credited once, even when the webhook's state is recorded again
    agency_charge_record_from_stripe(intent=PlatformStripe().payment_intent_retrieve(intent.id))
    wallet.refresh_from_db()
    charge.refresh_from_db()
    assert charge.status == AgencyCharge.Status.SUCCEEDED
    assert wallet.balance == Decimal("-3.141") + Decimal("13.15")
    assert list(wallet.entries.filter(kind=AgencyWalletEntry.Kind.RECHARGE).values_list("amount", "charge_id")) == [
        (Decimal("13.150000"), charge.pk)]
    # and agency B's wallet (at 0, below its threshold too) was not touched by A's charge
    other.refresh_from_db()
    assert other.balance == 0 and not other.charges.exists()


def test_no_charge_without_a_card_or_above_the_threshold(world, connected, raw_stripe):
    no_card = agency_wallet_at(world.a.agency, "1")
    assert agency_wallet_recharge_start(wallet_id=no_card.pk) is None
    healthy = agency_wallet_at(world.b.agency, "10", raw=raw_stripe)
    assert agency_wallet_recharge_start(wallet_id=healthy.pk) is None
    assert agency_wallets_due_for_recharge() == []
    assert platform_intents(raw_stripe) == [] and not AgencyCharge.objects.exists()


def test_a_decline_is_recorded_every_agency_admin_emailed_retried_then_a_new_card_pays(
        world, connected, raw_stripe, django_capture_on_commit_callbacks):
    # given a second agency admin of agency A, and an agency B admin who must hear nothing
    with tenant_context(world.a.agency):
        second = UserFactory(email="second-admin@alpha.test", role=User.Role.AGENCY_ADMIN)
    wallet = agency_wallet_at(world.a.agency, "2", raw=raw_stripe, card_number=DECLINING_CARD)

    # when the auto-recharge runs
    with django_capture_on_commit_callbacks(execute=True):
        charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
        agency_charge_execute(charge_id=charge.pk)

    # then the decline is recorded, the wallet shows it, a retry is due in 1 hour
    charge.refresh_from_db()
    wallet.refresh_from_db()
    assert charge.status == AgencyCharge.Status.FAILED and charge.failure_code == "card_declined"
    assert wallet.recharge_state == AgencyWallet.RechargeState.FAILED
    assert timedelta(minutes=59) < wallet.next_retry_at - timezone.now() <= timedelta(hours=1)
    assert wallet.balance == Decimal("2")
    # and every agency admin of agency A is emailed, nobody else
    [email] = mail.outbox
    assert set(email.to) == {world.a.admin.email, second.email}
    assert "recharge failed" in email.subject
    # and no new recharge starts before the retry is due
    assert agency_wallet_recharge_start(wallet_id=wallet.pk) is None
    assert agency_wallet_recharge_start(wallet_id=wallet.pk, retry=True) is None

    # when the retries come due, each fails again: 6 h, then 24 h, then none
    waits = []
    for _ in range(3):
        with time_machine.travel(wallet.next_retry_at + timedelta(seconds=1), tick=False):
            retry = agency_wallet_recharge_start(wallet_id=wallet.pk, retry=True)
            agency_charge_execute(charge_id=retry.pk)
            wallet.refresh_from_db()
            waits.append(wallet.next_retry_at - timezone.now() if wallet.next_retry_at else None)
    assert waits == [timedelta(hours=6), timedelta(hours=24), None]
    assert len(platform_intents(raw_stripe)) == 4

    # when the agency adds a working card, it is charged at once
    pm = raw_stripe.v1.payment_methods.create(params={"type": "card", "card": card()})
    raw_stripe.v1.payment_methods.attach(pm.id, params={"customer": wallet.stripe_customer_id})
    AgencyWallet.objects.filter(pk=wallet.pk).update(card_payment_method_id=pm.id)
    charge = agency_wallet_card_replaced(wallet_id=wallet.pk)
    agency_charge_execute(charge_id=charge.pk)
    wallet.refresh_from_db()
    assert wallet.recharge_state == AgencyWallet.RechargeState.OK and wallet.next_retry_at is None
    assert wallet.balance == Decimal("12")


def test_a_decline_whose_advice_says_not_to_retry_is_not_retried(world, connected, raw_stripe):
    # "pm_card_chargeCustomerFail" style declines come back as card_declined; a hard decline code is not retried
    from wallets.services.stripe_charging import ChargeFailure

    wallet = agency_wallet_at(world.a.agency, "2", raw=raw_stripe)
    charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
    from agency_wallets.charging import AGENCY_CHARGES, agency_charge_lock

    locked_wallet, locked = agency_charge_lock(charge.pk)
    AGENCY_CHARGES.failed(locked_wallet, locked, ChargeFailure(
        failure_code="card_declined", decline_code="stolen_card", advice_code="do_not_try_again",
        failure_message="The card was declined."))
    wallet.refresh_from_db()
    assert wallet.recharge_state == AgencyWallet.RechargeState.FAILED and wallet.next_retry_at is None


def test_a_stuck_charge_is_reconciled_by_looking_it_up_never_by_charging_again(world, connected, raw_stripe):
    # given a charge whose worker died after Stripe charged the card, before our commit
    wallet = agency_wallet_at(world.a.agency, "1", raw=raw_stripe)
    charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
    PlatformStripe().payment_intent_create_off_session(
        amount=charge.amount, currency=charge.currency, customer_id=charge.stripe_customer_id,
        payment_method_id=charge.payment_method_id,
        metadata={"rebill_charge": charge.idempotency_key, "rebill_agency_wallet": str(wallet.pk)},
        idempotency_key=charge.idempotency_key)

    # when the reconciler runs (twice), and the worker's rerun comes after
    agency_charge_reconcile(charge_id=charge.pk)
    agency_charge_reconcile(charge_id=charge.pk)
    agency_charge_execute(charge_id=charge.pk)

    # then still one PaymentIntent, credited once
    assert len(platform_intents(raw_stripe)) == 1
    charge.refresh_from_db()
    wallet.refresh_from_db()
    assert charge.status == AgencyCharge.Status.SUCCEEDED and wallet.balance == Decimal("11")
    assert wallet.entries.filter(kind=AgencyWalletEntry.Kind.RECHARGE).count() == 1
    # and agency B's account saw nothing
    assert raw_stripe.v1.payment_intents.list(options=on(ACCT_B)).data == []


def test_a_charge_that_never_reached_stripe_is_abandoned_after_an_hour_not_sent(world, connected, raw_stripe):
    wallet = agency_wallet_at(world.a.agency, "1", raw=raw_stripe)
    charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        agency_charge_reconcile(charge_id=charge.pk)
    charge.refresh_from_db()
    assert charge.status == AgencyCharge.Status.ABANDONED
    assert platform_intents(raw_stripe) == []
