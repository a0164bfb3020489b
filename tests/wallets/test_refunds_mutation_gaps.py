"""wallets/services/refunds.py where the rest of the suite does not look: a refund Stripe cannot make (the agency
disconnected, or Stripe refuses it) fails with its reason and debits nothing; a refund's ledger entry names the
payment and the Stripe refund; which refunds the maintenance job resumes, and when it stops sending one; the crash
points the SIGKILL test arms are passed once per refund."""

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
import stripe
import time_machine
from django.test.utils import override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from devservices.localstripe_server import next_refund_answers
from stripe_connect.models import ConnectedAccount
from tests.billing.fixtures import ACCT_A, on
from tests.wallets.helpers import rebill, stripe_409_while_in_flight, stripe_crash_point_passes
from wallets.models import Charge, Refund, WalletEntry
from wallets.services import charge_execute, wallet_add_balance_start, wallet_ensure, wallets_audit
from wallets.services.refunds import (
    RefundRefused,
    _refund_settle,
    charge_refund,
    charge_refundable,
    refund_execute,
    refund_resume,
    refund_start,
    refunds_to_resume,
)
from wallets.services.stripe_charging import KEY_SAFE_FOR

pytestmark = pytest.mark.django_db

REFUNDS_LOG = "wallets.services.refunds"


def _paid(client, raw_stripe, amount="20.00"):
    rebill(client, account_id=ACCT_A, raw=raw_stripe)
    wallet = wallet_ensure(subaccount=client)
    charge = charge_execute(charge_id=wallet_add_balance_start(wallet_id=wallet.pk, amount=Decimal(amount),
                                                               by="owner").pk)
    assert charge.status == Charge.Status.SUCCEEDED
    return wallet, charge


def _failed_as_logged(caplog, refund: Refund) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == REFUNDS_LOG and r.levelno == logging.WARNING
            and r.getMessage().startswith(f"Refund {refund.pk} ")]


def test_a_refund_after_the_agency_disconnected_stripe_fails_with_the_reason_and_debits_nothing(
        world, connected, raw_stripe, caplog):
    with tenant_context(world.a.agency):
        wallet, charge = _paid(world.a.subaccounts[0], raw_stripe)
        # given the agency disconnected its Stripe account after the client paid
        ConnectedAccount.objects.filter(agency=world.a.agency).delete()

        # when the agency admin refunds part of the payment
        with caplog.at_level(logging.WARNING, logger=REFUNDS_LOG):
            refund = charge_refund(charge_id=charge.pk, amount=Decimal("5.00"), by=world.a.admin)

        # then the refund failed, saying why, when, and that Stripe made none
        refund.refresh_from_db()
        reason = "The agency's Stripe account is no longer connected."
        assert (refund.status, refund.failure_message, refund.stripe_refund_id) == (Refund.Status.FAILED, reason, "")
        assert refund.completed_at is not None and timezone.now() - refund.completed_at < timedelta(minutes=1)
        assert _failed_as_logged(caplog, refund) == [f"Refund {refund.pk} failed: {reason}"]
        # and the wallet was not debited; the whole payment can still be refunded
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("20") and not WalletEntry.objects.filter(kind=WalletEntry.Kind.REFUND)
        assert charge_refundable(charge=charge) == Decimal("20.00")
    assert raw_stripe.v1.refunds.list(options=on(ACCT_A)).data == []


def test_a_refund_stripe_refuses_fails_with_stripes_reason_and_debits_nothing(world, connected, raw_stripe, caplog):
    with tenant_context(world.a.agency):
        wallet, charge = _paid(world.a.subaccounts[0], raw_stripe)
        # given a payment whose PaymentIntent Stripe no longer knows
        Charge.objects.filter(pk=charge.pk).update(payment_intent_id="pi_GoneFromStripe0000")

        # when the agency admin refunds it
        with caplog.at_level(logging.WARNING, logger=REFUNDS_LOG):
            refund = charge_refund(charge_id=charge.pk, amount=Decimal("5.00"), by=world.a.admin)

        # then the refund failed with Stripe's reason, no Stripe refund id, and nothing was debited
        refund.refresh_from_db()
        assert refund.status == Refund.Status.FAILED and refund.stripe_refund_id == ""
        assert refund.failure_message == "Not Found"  # Stripe's own words (localstripe's, for an unknown id)
        assert refund.completed_at is not None
        assert _failed_as_logged(caplog, refund) == [f"Refund {refund.pk} failed: {refund.failure_message}"]
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("20") and not WalletEntry.objects.filter(kind=WalletEntry.Kind.REFUND)


def test_a_refund_is_one_ledger_entry_naming_the_payment_and_stripes_refund(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        wallet, charge = _paid(world.a.subaccounts[0], raw_stripe)
        refund = charge_refund(charge_id=charge.pk, amount=Decimal("7.50"), by=world.a.admin)
        [stripe_refund] = raw_stripe.v1.refunds.list(options=on(ACCT_A)).data

        refund.refresh_from_db()
        assert (refund.status, refund.stripe_refund_id) == (Refund.Status.SUCCEEDED, stripe_refund.id)
        assert refund.completed_at is not None and refund.failure_message == ""
        entries = [(e.kind, e.amount, e.charge_id, e.refund_id, e.note, e.created_by)
                   for e in WalletEntry.objects.filter(wallet=wallet, kind=WalletEntry.Kind.REFUND)]
        assert entries == [(WalletEntry.Kind.REFUND, Decimal("-7.50"), charge.pk, refund.pk,
                            f"Refunded to the card ({stripe_refund.id})", world.a.admin.email)]
        assert wallets_audit() == []


def test_a_failure_longer_than_the_column_is_cut_not_lost(world, connected, raw_stripe, caplog):
    with tenant_context(world.a.agency):
        _, charge = _paid(world.a.subaccounts[0], raw_stripe)
        refund = refund_start(charge_id=charge.pk, amount=Decimal("1.00"), by=world.a.admin)
        _refund_settle(refund.pk, stripe_refund_id="", failure="x" * 600)
        refund.refresh_from_db()
        assert refund.status == Refund.Status.FAILED and refund.failure_message == "x" * 500


def test_the_job_resumes_refunds_left_started_for_ten_minutes_oldest_first(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        _, charge = _paid(world.a.subaccounts[0], raw_stripe)
        first = refund_start(charge_id=charge.pk, amount=Decimal("1.00"), by=world.a.admin)
        second = refund_start(charge_id=charge.pk, amount=Decimal("2.00"), by=world.a.admin)
        assert refunds_to_resume() == []
        with time_machine.travel(timezone.now() + timedelta(minutes=11)):
            assert refunds_to_resume() == [first.pk, second.pk]


def test_a_refund_is_sent_again_up_to_the_keys_last_moment_then_left_for_a_person(
        world, connected, raw_stripe, caplog):
    with tenant_context(world.a.agency):
        _, charge = _paid(world.a.subaccounts[0], raw_stripe)
        late = refund_start(charge_id=charge.pk, amount=Decimal("1.00"), by=world.a.admin)
        last_moment = refund_start(charge_id=charge.pk, amount=Decimal("2.00"), by=world.a.admin)

        # when the job finds one refund just past the key's window, another exactly at its end
        with caplog.at_level(logging.ERROR, logger=REFUNDS_LOG):
            with time_machine.travel(late.created_at + KEY_SAFE_FOR + timedelta(microseconds=1), tick=False):
                assert refund_resume(refund_id=late.pk).status == Refund.Status.STARTED
            with time_machine.travel(last_moment.created_at + KEY_SAFE_FOR, tick=False):
                assert refund_resume(refund_id=last_moment.pk).status == Refund.Status.SUCCEEDED

        # then only the one within the window reached Stripe; the other is named for a person to settle by hand
        assert [r.amount for r in raw_stripe.v1.refunds.list(options=on(ACCT_A)).data] == [200]
        assert [r.getMessage() for r in caplog.records if r.name == REFUNDS_LOG and r.levelno == logging.ERROR] == [
            f"Refund {late.pk} ({late.idempotency_key}) has been STARTED for over a day: check it in Stripe and "
            "settle it by hand"]


@override_settings(WALLET_CRASH_POINTS=True)
def test_a_refund_passes_once_through_each_crash_point_the_sigkill_test_arms(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        _, charge = _paid(world.a.subaccounts[0], raw_stripe)
        with stripe_crash_point_passes() as passes:
            charge_refund(charge_id=charge.pk, amount=Decimal("1.00"), by=world.a.admin)
            # then the refund went once through the point before Stripe and once through the one after
            assert passes() == (1, 1)


def test_nothing_is_refundable_of_a_payment_that_did_not_succeed(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        _, charge = _paid(world.a.subaccounts[0], raw_stripe)
        assert charge_refundable(charge=charge) == Decimal("20.00")
        for status in (Charge.Status.FAILED, Charge.Status.PROCESSING, Charge.Status.ABANDONED):
            charge.status = status
            assert charge_refundable(charge=charge) == 0


def test_a_refused_refund_says_why_in_so_many_words_and_changes_nothing(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        wallet, charge = _paid(world.a.subaccounts[0], raw_stripe, amount="5.00")
        refusals = {Decimal("0"): "Enter an amount above zero.", Decimal("NaN"): "Enter an amount above zero.",
                    Decimal("1.001"): "Use whole cents.",
                    Decimal("5.01"): "At most 5.00 USD of this payment can still be refunded."}
        for amount, reason in refusals.items():
            with pytest.raises(RefundRefused) as refused:
                refund_start(charge_id=charge.pk, amount=amount, by=world.a.admin)
            assert refused.value.messages == [reason], amount

        # and a payment that did not succeed cannot be refunded at all
        Charge.objects.filter(pk=charge.pk).update(status=Charge.Status.FAILED)
        with pytest.raises(RefundRefused) as refused:
            refund_start(charge_id=charge.pk, amount=Decimal("1.00"), by=world.a.admin)
        assert refused.value.messages == ["Only a payment that succeeded can be refunded."]
        assert not Refund.objects.exists()
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("5")


def test_a_refund_whose_key_is_still_in_flight_elsewhere_is_left_started_for_the_retry(
        world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        wallet, charge = _paid(world.a.subaccounts[0], raw_stripe)
        refund = refund_start(charge_id=charge.pk, amount=Decimal("5.00"), by=world.a.admin)
        # when this worker sends it while another worker's call of the same refund waits for Stripe's answer
        raised = stripe_409_while_in_flight(
            localstripe, path="/v1/refunds", sent_here=lambda: refund_execute(refund_id=refund.pk),
            sent_elsewhere=lambda: raw_stripe.v1.refunds.create(
                params={"payment_intent": charge.payment_intent_id, "amount": 500,
                        "metadata": {"rebill_refund": refund.idempotency_key}},
                options=stripe.RequestOptions(stripe_account=ACCT_A, idempotency_key=refund.idempotency_key)))
        # then Stripe's 409 is raised for the task to retry, and nothing is recorded
        assert raised.http_status == 409
        refund.refresh_from_db()
        assert (refund.status, refund.stripe_refund_id, refund.failure_message) == (Refund.Status.STARTED, "", "")
        assert not WalletEntry.objects.filter(kind=WalletEntry.Kind.REFUND).exists()
        # and the retry records the answer of the call that was in flight: one refund at Stripe, one ledger entry
        assert refund_execute(refund_id=refund.pk).status == Refund.Status.SUCCEEDED
        [made] = raw_stripe.v1.refunds.list(options=on(ACCT_A)).data
        [entry] = WalletEntry.objects.filter(kind=WalletEntry.Kind.REFUND)
        assert (entry.amount, entry.note) == (Decimal("-5.00"), f"Refunded to the card ({made.id})")
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("15.00")


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_a_refund_stripe_makes_but_answers_failed_or_canceled_fails_and_debits_nothing(
        world, connected, raw_stripe, localstripe, caplog, status):
    with tenant_context(world.a.agency):
        wallet, charge = _paid(world.a.subaccounts[0], raw_stripe)
        # given Stripe makes the next refund but answers it failed (or canceled)
        next_refund_answers(localstripe, status)
        # when the agency admin refunds 5.00
        with caplog.at_level(logging.WARNING, logger=REFUNDS_LOG):
            refund = charge_refund(charge_id=charge.pk, amount=Decimal("5.00"), by=world.a.admin)
        # then the refund failed, naming Stripe's refund, and the wallet was not debited
        [made] = raw_stripe.v1.refunds.list(options=on(ACCT_A)).data
        assert made.status == status
        refund.refresh_from_db()
        assert (refund.status, refund.stripe_refund_id, refund.failure_message) == (
            Refund.Status.FAILED, made.id, "Stripe could not refund it.")
        assert refund.completed_at is not None
        assert _failed_as_logged(caplog, refund) == [f"Refund {refund.pk} failed: Stripe could not refund it."]
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("20") and not WalletEntry.objects.filter(kind=WalletEntry.Kind.REFUND)
