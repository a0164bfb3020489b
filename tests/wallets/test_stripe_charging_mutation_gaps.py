"""wallets/services/stripe_charging.py where the rest of the suite does not look: what a charge records when its
PaymentIntent is read back from Stripe unpaid (waiting for the card holder, canceled, or declined after our worker
died, with the decline and advice codes real Stripe sends and localstripe does not; the same for Stripe's 402 answer
to our own call), a charge left processing settled
by looking its PaymentIntent up, and a charge given up or left alone (the agency moved to another Stripe account, or
disconnected) saying why, to the charge row and the log."""

import json
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
import stripe
import time_machine
from django.test.utils import override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from stripe_connect.gateway import AgencyStripe
from stripe_connect.models import ConnectedAccount
from stripe_connect.money import to_minor_units
from tests.billing.fixtures import ACCT_A, api_requests, on
from tests.wallets.helpers import (
    DECLINING_CARD,
    rebill,
    recharge_held_by_the_bank,
    stripe_409_while_in_flight,
    stripe_crash_point_passes,
)
from wallets.models import Charge, Wallet
from wallets.services import charge_execute, charge_reconcile, wallet_adjust, wallet_ensure, wallet_recharge_start
from wallets.services.charging import CLIENT_CHARGES, charge_record, charge_record_from_stripe
from wallets.services.stripe_charging import KEY_SAFE_FOR, _abandon, _declined, decline_is_retryable

pytestmark = pytest.mark.django_db

CHARGING_LOG = "wallets.services.stripe_charging"
CONFIRM = "Your bank asks you to confirm this payment."


def _failure(charge: Charge) -> tuple[str, str, str, str, str]:
    charge.refresh_from_db()
    return charge.status, charge.failure_code, charge.decline_code, charge.advice_code, charge.failure_message


def _below_threshold(client, raw_stripe, **card) -> tuple[Wallet, Charge]:
    rebill(client, account_id=ACCT_A, raw=raw_stripe, **card)
    wallet = wallet_ensure(subaccount=client)
    wallet_adjust(wallet=wallet, amount=Decimal("2"), note="start", by="t")
    return wallet, wallet_recharge_start(wallet_id=wallet.pk)


def _payment_intent_made_for(charge: Charge, *, idempotency_key: str):
    """The charge's PaymentIntent made at Stripe as our own call makes it, under the given idempotency key."""
    return AgencyStripe(ACCT_A).payment_intent_create_off_session(
        amount=charge.amount, currency=charge.currency, customer_id=charge.stripe_customer_id,
        payment_method_id=charge.payment_method_id, metadata=CLIENT_CHARGES.metadata(charge),
        idempotency_key=idempotency_key)


def test_a_recharge_the_bank_holds_records_that_the_card_holder_must_confirm(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        wallet, charge = recharge_held_by_the_bank(world.a.subaccounts[0], raw=raw_stripe)
        assert _failure(charge) == (Charge.Status.FAILED, "authentication_required", "", "", CONFIRM)
        wallet.refresh_from_db()
        assert (wallet.recharge_state, wallet.last_failure_message) == (Wallet.RechargeState.ACTION_REQUIRED,
                                                                         CONFIRM)


def test_a_payment_intent_read_back_awaiting_confirmation_waits_for_the_card_holder(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a recharge whose PaymentIntent Stripe holds unconfirmed (its card given, never confirmed)
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        created = raw_stripe.v1.payment_intents.create(params={
            "amount": to_minor_units(charge.amount, charge.currency), "currency": charge.currency,
            "customer": charge.stripe_customer_id, "payment_method": charge.payment_method_id,
            "metadata": {"rebill_charge": charge.idempotency_key}}, options=on(ACCT_A))

        # when its webhook's PaymentIntent, re-read from Stripe, is recorded
        intent = AgencyStripe(ACCT_A).payment_intent_retrieve(created.id)
        assert intent.status == "requires_confirmation"
        charge_record_from_stripe(intent=intent)

        # then the charge waits for the card holder to confirm it, as when the bank asks
        assert _failure(charge) == (Charge.Status.FAILED, "authentication_required", "", "", CONFIRM)
        wallet.refresh_from_db()
        assert wallet.recharge_state == Wallet.RechargeState.ACTION_REQUIRED and wallet.balance == Decimal("2")


def test_a_decline_learned_only_by_looking_the_payment_intent_up_records_stripes_code_and_message(
        world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a recharge on a declining card whose worker died after Stripe declined it (nothing recorded)
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe, card_number=DECLINING_CARD)
        with pytest.raises(stripe.CardError):
            AgencyStripe(ACCT_A).payment_intent_create_off_session(
                amount=charge.amount, currency=charge.currency, customer_id=charge.stripe_customer_id,
                payment_method_id=charge.payment_method_id, metadata=CLIENT_CHARGES.metadata(charge),
                idempotency_key=str(charge.idempotency_key))

        # when the reconciler looks its PaymentIntent up
        charge_reconcile(charge_id=charge.pk)

        # then the decline is Stripe's own (its last payment error), and a retry is due in an hour
        assert _failure(charge) == (Charge.Status.FAILED, "card_declined", "", "", "Your card was declined.")
        wallet.refresh_from_db()
        assert (wallet.recharge_state, wallet.last_failure_code) == (Wallet.RechargeState.FAILED, "card_declined")
        assert timedelta(minutes=59) < wallet.next_retry_at - timezone.now() <= timedelta(hours=1)


def test_a_charge_given_up_says_why_and_when_on_its_row_and_in_the_log(world, connected, raw_stripe, caplog):
    with tenant_context(world.a.agency):
        # given a recharge committed STARTED, then the agency connected another Stripe account
        _, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        ConnectedAccount.objects.filter(agency=world.a.agency).update(account_id="acct_1Another000000000")

        # when its worker runs
        with caplog.at_level(logging.WARNING, logger=CHARGING_LOG):
            charge_execute(charge_id=charge.pk)

        # then the charge is abandoned with the reason, when it was given up, and the log says which and why
        moved = "The agency connected another Stripe account after this charge started."
        assert _failure(charge) == (Charge.Status.ABANDONED, "", "", "", moved)
        assert timezone.now() - charge.completed_at < timedelta(minutes=1)
        assert [r.getMessage() for r in caplog.records if r.name == CHARGING_LOG] == [
            f"Charge {charge.pk} abandoned: {moved}"]


def test_a_reason_longer_than_the_column_is_cut_not_lost(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        _, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        _abandon(CLIENT_CHARGES, charge, "x" * 600)
        assert _failure(charge) == (Charge.Status.ABANDONED, "", "", "", "x" * 500)


def _unconfirmed_intent(charge: Charge, raw_stripe) -> str:
    """A PaymentIntent of the charge's amount on the agency's account, its card given but never confirmed."""
    return raw_stripe.v1.payment_intents.create(params={
        "amount": to_minor_units(charge.amount, charge.currency), "currency": charge.currency,
        "customer": charge.stripe_customer_id, "payment_method": charge.payment_method_id,
        "metadata": {"rebill_charge": charge.idempotency_key}}, options=on(ACCT_A)).id


def test_a_payment_intent_canceled_at_stripe_fails_the_charge_as_declined(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a recharge whose PaymentIntent was canceled at Stripe before it was paid
        _, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        intent_id = _unconfirmed_intent(charge, raw_stripe)
        raw_stripe.v1.payment_intents.cancel(intent_id, options=on(ACCT_A))

        # when the webhook's PaymentIntent is recorded
        charge_record_from_stripe(intent=AgencyStripe(ACCT_A).payment_intent_retrieve(intent_id))

        # then the charge failed: Stripe gave no error, so its status is the code and the card "was declined"
        assert _failure(charge) == (Charge.Status.FAILED, "canceled", "", "", "The card was declined.")


def _as_stripe_sends_it(charge: Charge, *, last_payment_error: dict) -> stripe.PaymentIntent:
    """A declined PaymentIntent as Stripe's API returns it, built by stripe-python from the JSON: real Stripe's last
    payment error carries decline and advice codes, which localstripe never sends."""
    return stripe.PaymentIntent.construct_from({
        "id": "pi_1DeclinedByTheIssuer0", "object": "payment_intent", "status": "requires_payment_method",
        "amount": to_minor_units(charge.amount, charge.currency), "currency": charge.currency,
        "metadata": {"rebill_charge": charge.idempotency_key}, "last_payment_error": last_payment_error}, None)


def test_the_issuers_decline_and_advice_codes_are_recorded_and_decide_the_retry(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a recharge Stripe declined for insufficient funds, advising to try again later
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        intent = _as_stripe_sends_it(charge, last_payment_error={
            "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
            "advice_code": "try_again_later", "message": "Your card has insufficient funds."})

        # when its payment_intent.payment_failed webhook is recorded
        charge_record_from_stripe(intent=intent)

        # then the charge keeps each of Stripe's codes, the wallet shows the issuer's, and a retry is due
        assert _failure(charge) == (Charge.Status.FAILED, "card_declined", "insufficient_funds", "try_again_later",
                                    "Your card has insufficient funds.")
        wallet.refresh_from_db()
        assert (wallet.recharge_state, wallet.last_failure_code) == (Wallet.RechargeState.FAILED, "insufficient_funds")
        assert wallet.next_retry_at is not None

        # and an advice never to try again stops the retries
        other_wallet, other = _below_threshold(world.a.subaccounts[1], raw_stripe)
        charge_record_from_stripe(intent=_as_stripe_sends_it(other, last_payment_error={
            "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
            "advice_code": "do_not_try_again", "message": "Your card was declined."}))
        assert _failure(other)[2:4] == ("generic_decline", "do_not_try_again")
        other_wallet.refresh_from_db()
        assert other_wallet.recharge_state == Wallet.RechargeState.FAILED and other_wallet.next_retry_at is None


def test_codes_and_a_message_longer_than_their_columns_are_cut_not_lost(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        _, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        charge_record_from_stripe(intent=_as_stripe_sends_it(charge, last_payment_error={
            "code": "c" * 150, "decline_code": "d" * 150, "advice_code": "a" * 150, "message": "m" * 600}))
        assert _failure(charge) == (Charge.Status.FAILED, "c" * 100, "d" * 100, "a" * 100, "m" * 500)


def test_a_charge_left_processing_is_settled_by_looking_its_payment_intent_up(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a recharge Stripe charged, recorded as processing by an earlier answer
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        intent = _payment_intent_made_for(charge, idempotency_key=str(charge.idempotency_key))
        Charge.objects.filter(pk=charge.pk).update(status=Charge.Status.PROCESSING, payment_intent_id=intent.id)

        # when the reconciler runs
        charge_reconcile(charge_id=charge.pk)

        # then it read that PaymentIntent (no new one) and credited the wallet once
        charge.refresh_from_db()
        wallet.refresh_from_db()
        assert charge.status == Charge.Status.SUCCEEDED and wallet.balance == Decimal("2") + charge.amount
        assert len(raw_stripe.v1.payment_intents.list(options=on(ACCT_A)).data) == 1


def test_a_charge_the_reconciler_cannot_reach_is_left_as_it_is_and_logged(world, connected, raw_stripe, caplog):
    with tenant_context(world.a.agency):
        # given a recharge left processing, then the agency disconnected its Stripe account
        _, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        Charge.objects.filter(pk=charge.pk).update(status=Charge.Status.PROCESSING, payment_intent_id="pi_processing")
        ConnectedAccount.objects.filter(agency=world.a.agency).delete()

        # when the reconciler runs
        with caplog.at_level(logging.WARNING, logger=CHARGING_LOG):
            charge_reconcile(charge_id=charge.pk)

        # then the charge is left for a person (nothing guessed), and the log says which and why
        assert _failure(charge) == (Charge.Status.PROCESSING, "", "", "", "")
        assert [r.getMessage() for r in caplog.records if r.name == CHARGING_LOG] == [
            f"Charge {charge.pk} cannot be reconciled: The agency's Stripe account is no longer connected."]


def _card_error_as_stripe_answers(error: dict) -> stripe.CardError:
    """Stripe's 402 answer as stripe-python turns it into a CardError (its own constructor, from the JSON body): real
    Stripe's error carries decline and advice codes and the PaymentIntent, which localstripe never sends."""
    body = {"error": {"type": "card_error", **error}}
    return stripe.CardError(error.get("message"), error.get("param"), error.get("code"), json.dumps(body), 402, body,
                            {"request-id": "req_declined"})


def test_stripes_decline_of_our_call_records_its_codes_its_payment_intent_and_decides_the_retry(
        world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a recharge whose off-session call Stripe answered 402: insufficient funds, try again later
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        error = _card_error_as_stripe_answers({
            "code": "card_declined", "decline_code": "insufficient_funds", "advice_code": "try_again_later",
            "message": "Your card has insufficient funds.",
            "payment_intent": {"id": "pi_1DeclinedByTheIssuer0", "object": "payment_intent"}})

        # when the decline is recorded
        _declined(CLIENT_CHARGES, charge, error)

        # then the charge keeps each of Stripe's codes and its PaymentIntent, the wallet shows the issuer's code
        assert _failure(charge) == (Charge.Status.FAILED, "card_declined", "insufficient_funds", "try_again_later",
                                    "Your card has insufficient funds.")
        assert charge.payment_intent_id == "pi_1DeclinedByTheIssuer0"
        assert timezone.now() - charge.completed_at < timedelta(minutes=1)
        wallet.refresh_from_db()
        assert (wallet.recharge_state, wallet.last_failure_code) == (Wallet.RechargeState.FAILED, "insufficient_funds")
        assert wallet.next_retry_at is not None

        # and an advice never to try again stops the retries
        other_wallet, other = _below_threshold(world.a.subaccounts[1], raw_stripe)
        _declined(CLIENT_CHARGES, other, _card_error_as_stripe_answers({
            "code": "card_declined", "decline_code": "generic_decline", "advice_code": "do_not_try_again",
            "message": "Your card was declined."}))
        assert _failure(other)[2:4] == ("generic_decline", "do_not_try_again")
        other_wallet.refresh_from_db()
        assert other_wallet.next_retry_at is None


def test_a_decline_stripe_names_no_code_and_no_message_for_is_the_card_was_declined(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        _, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        _declined(CLIENT_CHARGES, charge, _card_error_as_stripe_answers({}))
        assert _failure(charge) == (Charge.Status.FAILED, "", "", "", "The card was declined.")
        assert charge.payment_intent_id == ""


def test_overlong_codes_and_message_of_a_decline_are_cut_to_their_columns(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        _, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        _declined(CLIENT_CHARGES, charge, _card_error_as_stripe_answers({
            "code": "c" * 150, "decline_code": "d" * 150, "advice_code": "a" * 150, "message": "m" * 600}))
        assert _failure(charge) == (Charge.Status.FAILED, "c" * 100, "d" * 100, "a" * 100, "m" * 500)


def test_a_decline_naming_its_payment_intent_by_id_only_keeps_that_id(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        _, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        _declined(CLIENT_CHARGES, charge, _card_error_as_stripe_answers({
            "code": "card_declined", "message": "Your card was declined.", "payment_intent": "pi_1UnexpandedId00000"}))
        charge.refresh_from_db()
        assert charge.payment_intent_id == "pi_1UnexpandedId00000"



@pytest.mark.parametrize(("failure_code", "decline_code", "advice_code", "retried"), [
    ("card_declined", "insufficient_funds", "", True),
    ("card_declined", "insufficient_funds", "try_again_later", True),
    ("card_declined", "insufficient_funds", "do_not_try_again", False),  # the issuer's advice wins
    ("card_declined", "insufficient_funds", "confirm_card_data", False),
    ("card_declined", "stolen_card", "", False),  # a hard decline
    ("expired_card", "", "", False),  # only the card holder can fix it
    ("card_declined", "incorrect_cvc", "", False),
    ("authentication_required", "", "", False),  # waits for the card holder instead
    ("card_declined", "authentication_required", "", False),
])
def test_which_declines_a_retry_is_scheduled_for(failure_code, decline_code, advice_code, retried):
    assert decline_is_retryable(failure_code=failure_code, decline_code=decline_code,
                                advice_code=advice_code) is retried


def test_a_charge_stripe_refuses_as_a_bad_request_fails_with_stripes_reason_and_waits_for_a_new_card(
        world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a recharge whose card Stripe no longer has
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        Charge.objects.filter(pk=charge.pk).update(payment_method_id="pm_GoneFromStripe0000")

        # when its worker calls Stripe
        charge_execute(charge_id=charge.pk)

        # then the charge failed with what Stripe said (no exception), and no retry is scheduled: a new card is needed
        status, code, _, _, message = _failure(charge)
        assert (status, code) == (Charge.Status.FAILED, "resource_missing") and message
        wallet.refresh_from_db()
        assert (wallet.recharge_state, wallet.last_failure_code, wallet.last_failure_message) == (
            Wallet.RechargeState.FAILED, "resource_missing", message)
        assert wallet.balance == Decimal("2") and wallet.next_retry_at is None


def test_a_successful_retry_clears_the_failure_the_pages_showed(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a wallet whose recharge failed once, its retry due now
        wallet, _ = _below_threshold(world.a.subaccounts[0], raw_stripe)
        Charge.objects.all().delete()
        Wallet.objects.filter(pk=wallet.pk).update(
            recharge_state=Wallet.RechargeState.FAILED, failed_retries=1,
            next_retry_at=timezone.now() - timedelta(minutes=1), last_failure_code="insufficient_funds",
            last_failure_message="Your card has insufficient funds.")

        # when the retry charges the card
        charge = charge_execute(charge_id=wallet_recharge_start(wallet_id=wallet.pk, retry=True).pk)

        # then the wallet is back to normal: no failure shown, no retry pending, the count restarted
        assert charge.status == Charge.Status.SUCCEEDED
        wallet.refresh_from_db()
        assert (wallet.recharge_state, wallet.failed_retries, wallet.next_retry_at, wallet.last_failure_code,
                wallet.last_failure_message) == (Wallet.RechargeState.OK, 0, None, "", "")


@override_settings(WALLET_CRASH_POINTS=True)
def test_a_charge_passes_once_through_each_crash_point_the_sigkill_test_arms(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        _, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        with stripe_crash_point_passes() as passes:
            assert charge_execute(charge_id=charge.pk).status == Charge.Status.SUCCEEDED
            # then the charge went once through the point before Stripe and once through the one after
            assert passes() == (1, 1)


def _payment_intents(raw_stripe) -> list:
    return raw_stripe.v1.payment_intents.list(options=on(ACCT_A)).data


def test_a_charge_that_already_has_its_payment_intent_is_read_back_not_sent_again(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a fresh recharge whose PaymentIntent is known (recorded before the worker died), made without its key
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        made = _payment_intent_made_for(charge, idempotency_key=f"elsewhere-{charge.idempotency_key}")
        Charge.objects.filter(pk=charge.pk).update(payment_intent_id=made.id)

        # when the charge is run again
        charge = charge_execute(charge_id=charge.pk)

        # then that PaymentIntent settled it: nothing new at Stripe, the wallet credited once
        wallet.refresh_from_db()
        assert (charge.status, charge.payment_intent_id) == (Charge.Status.SUCCEEDED, made.id)
        assert [intent.id for intent in _payment_intents(raw_stripe)] == [made.id]
        assert wallet.balance == Decimal("2") + charge.amount


def test_a_charge_is_sent_up_to_its_keys_last_moment_then_only_looked_up(world, connected, raw_stripe, caplog):
    with tenant_context(world.a.agency):
        wallet, late = _below_threshold(world.a.subaccounts[0], raw_stripe)

        # when a rerun finds the charge just past the window in which Stripe still knows its key
        with caplog.at_level(logging.WARNING, logger=CHARGING_LOG):
            with time_machine.travel(late.created_at + KEY_SAFE_FOR + timedelta(microseconds=1), tick=False):
                late = charge_execute(charge_id=late.pk)

        # then it is not sent (a second payment could follow): no PaymentIntent carries its key, so it is given up
        assert late.status == Charge.Status.ABANDONED and _payment_intents(raw_stripe) == []
        assert [r.getMessage() for r in caplog.records if r.name == CHARGING_LOG] == [
            f"Charge {late.pk} abandoned: No PaymentIntent carries this charge's key: it never reached Stripe."]

        # and a charge found exactly at the window's end is still sent, with its key
        Wallet.objects.filter(pk=wallet.pk).update(recharge_state=Wallet.RechargeState.OK)
        last_moment = wallet_recharge_start(wallet_id=wallet.pk)
        with time_machine.travel(last_moment.created_at + KEY_SAFE_FOR, tick=False):
            assert charge_execute(charge_id=last_moment.pk).status == Charge.Status.SUCCEEDED
        assert [intent.metadata["rebill_charge"] for intent in _payment_intents(raw_stripe)] == [
            last_moment.idempotency_key]


def test_a_payment_intent_still_processing_is_recorded_and_credited_only_when_it_succeeds(
        world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        # given a recharge sent to Stripe
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        answer = {"id": "pi_slow", "object": "payment_intent", "amount": to_minor_units(charge.amount, "usd"),
                  "currency": "usd", "metadata": {"rebill_charge": charge.idempotency_key}}

        # when Stripe answers that the payment is processing (a bank debit; localstripe never says so)
        charge_record_from_stripe(intent=stripe.PaymentIntent.construct_from({**answer, "status": "processing"},
                                                                             "sk_test"))

        # then the charge waits, processing, with its PaymentIntent kept for the reconciler; nothing credited yet
        charge.refresh_from_db()
        wallet.refresh_from_db()
        assert (charge.status, charge.payment_intent_id, charge.completed_at) == (
            Charge.Status.PROCESSING, "pi_slow", None)
        assert wallet.balance == Decimal("2")

        # and when it succeeds later, the wallet is credited once
        charge_record_from_stripe(intent=stripe.PaymentIntent.construct_from({**answer, "status": "succeeded"},
                                                                             "sk_test"))
        charge.refresh_from_db()
        wallet.refresh_from_db()
        assert charge.status == Charge.Status.SUCCEEDED and wallet.balance == Decimal("2") + charge.amount


def test_a_scheduled_retry_starts_at_the_moment_it_is_due_not_before(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        wallet, _ = _below_threshold(world.a.subaccounts[0], raw_stripe)
        Charge.objects.all().delete()
        due = timezone.now() + timedelta(hours=1)
        Wallet.objects.filter(pk=wallet.pk).update(recharge_state=Wallet.RechargeState.FAILED, failed_retries=1,
                                                   next_retry_at=due)
        with time_machine.travel(due - timedelta(microseconds=1), tick=False):
            assert wallet_recharge_start(wallet_id=wallet.pk, retry=True) is None
        with time_machine.travel(due, tick=False):
            assert wallet_recharge_start(wallet_id=wallet.pk, retry=True) is not None


def test_a_charge_whose_key_is_still_in_flight_elsewhere_is_left_started_for_the_retry(
        world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        # when this worker sends it while another worker's call of the same charge waits for Stripe's answer
        raised = stripe_409_while_in_flight(
            localstripe, path="/v1/payment_intents", sent_here=lambda: charge_execute(charge_id=charge.pk),
            sent_elsewhere=lambda: _payment_intent_made_for(charge, idempotency_key=charge.idempotency_key))
        # then Stripe's 409 is raised for the task to retry, and nothing is recorded
        assert raised.http_status == 409
        assert _failure(charge) == (Charge.Status.STARTED, "", "", "", "")
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("2")
        # and the retry records the answer of the call that was in flight: one payment at Stripe, credited once
        assert charge_execute(charge_id=charge.pk).status == Charge.Status.SUCCEEDED
        [made] = raw_stripe.v1.payment_intents.list(options=on(ACCT_A)).data
        charge.refresh_from_db()
        wallet.refresh_from_db()
        assert charge.payment_intent_id == made.id
        assert wallet.balance == Decimal("2") + charge.amount


def test_a_recharge_is_one_off_session_payment_of_the_clients_saved_card_under_the_charges_key(
        world, connected, raw_stripe, localstripe):
    with tenant_context(world.a.agency):
        _, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        charge = charge_execute(charge_id=charge.pk)
    # then Stripe was asked once, on the agency's account, under the charge's idempotency key
    [post] = [r for r in api_requests(localstripe) if (r["method"], r["path"]) == ("POST", "/v1/payment_intents")]
    assert (post["stripe_account"], post["idempotency_key"]) == (ACCT_A, charge.idempotency_key)
    # for the client's customer and saved card, the charge's amount and currency, naming the charge
    intent = raw_stripe.v1.payment_intents.retrieve(charge.payment_intent_id, options=on(ACCT_A))
    assert (intent.customer, intent.payment_method, intent.amount, intent.currency, intent.status) == (
        charge.stripe_customer_id, charge.payment_method_id, to_minor_units(charge.amount, charge.currency),
        charge.currency, "succeeded")
    assert intent.metadata["rebill_charge"] == charge.idempotency_key


def test_a_payment_intent_naming_the_charge_for_another_amount_is_not_recorded_on_it(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        # given a PaymentIntent at Stripe naming the charge, in its currency but for one cent more
        other = raw_stripe.v1.payment_intents.create(params={
            "amount": to_minor_units(charge.amount, charge.currency) + 1, "currency": charge.currency,
            "customer": charge.stripe_customer_id, "payment_method": charge.payment_method_id, "confirm": True,
            "off_session": True, "metadata": {"rebill_charge": charge.idempotency_key}}, options=on(ACCT_A))
        assert other.status == "succeeded"
        # when its webhook is recorded: refused, and the charge and the wallet are as they were
        with pytest.raises(ValueError, match=f"PaymentIntent {other.id} is not charge {charge.idempotency_key}"):
            charge_record_from_stripe(intent=AgencyStripe(ACCT_A).payment_intent_retrieve(other.id))
        assert _failure(charge) == (Charge.Status.STARTED, "", "", "", "")
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("2")


def test_a_payment_intent_of_another_charge_for_the_same_amount_is_not_recorded_on_this_one(
        world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        wallet, charge = _below_threshold(world.a.subaccounts[0], raw_stripe)
        # given a paid PaymentIntent at Stripe for the same amount and currency, naming another charge
        other = raw_stripe.v1.payment_intents.create(params={
            "amount": to_minor_units(charge.amount, charge.currency), "currency": charge.currency,
            "customer": charge.stripe_customer_id, "payment_method": charge.payment_method_id, "confirm": True,
            "off_session": True, "metadata": {"rebill_charge": f"{charge.idempotency_key}-other"}}, options=on(ACCT_A))
        # when it is recorded on this charge: refused, saying which, and the charge and the wallet are as they were
        with pytest.raises(ValueError) as refused:
            charge_record(charge_id=charge.pk, intent=AgencyStripe(ACCT_A).payment_intent_retrieve(other.id))
        assert str(refused.value) == f"PaymentIntent {other.id} is not charge {charge.idempotency_key}"
        assert _failure(charge) == (Charge.Status.STARTED, "", "", "", "")
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("2")
