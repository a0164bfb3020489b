"""agency_wallets/charging.py where the rest of the suite does not look: which agency wallets the maintenance job
recharges and retries (and in which order), which charges it reconciles and when (never while a worker is calling
Stripe for one), which charge the confirm page offers, the agency's customer and SetupIntent as the platform's Stripe
account keeps them, a card confirmed by the platform's webhook alone (the browser
never said done), what a failed recharge emails the agency's admins, the audit log's before and after of a settings
change, and the audit of chosen agencies only."""

import re
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.models import Agency
from agency_wallets.charging import (
    AGENCY_CHARGES,
    agency_auto_recharge_set,
    agency_card_setup_client_secret,
    agency_card_setup_complete,
    agency_card_setup_start,
    agency_charge_awaiting_confirmation,
    agency_charge_execute,
    agency_charge_lock,
    agency_charge_reconcile,
    agency_charges_to_reconcile,
    agency_wallet_recharge_start,
    agency_wallets_audit,
    agency_wallets_due_for_recharge,
    agency_wallets_due_for_retry,
)
from agency_wallets.models import AgencyCardSetup, AgencyCharge, AgencyWallet, AgencyWalletEntry
from devservices.localstripe_server import clear_recorded_requests
from people.models import User
from subaccounts.models import AuditEntry
from tests.agency_wallets.helpers import agency_wallet_at, platform_intents
from tests.billing.fixtures import PLATFORM_WEBHOOK_SECRET, api_requests, event_payload, post_webhook, sign
from tests.billing.helpers import confirm_like_stripe_js
from tests.conftest import client_for
from tests.queued_jobs import queued
from wallets.locks import charge_call_guard
from wallets.services.stripe_charging import SEARCH_SETTLES_AFTER, ChargeFailure

pytestmark = pytest.mark.django_db

PLATFORM = "/stripe/platform-webhook/"


def _failed(wallet: AgencyWallet, *, retry_at) -> None:
    AgencyWallet.objects.filter(pk=wallet.pk).update(recharge_state=AgencyWallet.RechargeState.FAILED,
                                                     last_failure_code="insufficient_funds", next_retry_at=retry_at)


def test_only_wallets_below_their_threshold_whose_recharge_has_not_failed_are_due(world, connected, raw_stripe):
    # given agency A's wallet below its threshold with a card, and agency B's below it too but its recharge failed
    due = agency_wallet_at(world.a.agency, "1", raw=raw_stripe)
    failed = agency_wallet_at(world.b.agency, "2", raw=raw_stripe)
    _failed(failed, retry_at=timezone.now() + timedelta(hours=1))

    # then the job recharges A only (B waits for its retry)
    assert agency_wallets_due_for_recharge() == [due.pk]
    assert agency_wallets_due_for_retry() == []


def test_failed_recharges_are_retried_once_their_time_has_come_in_wallet_order(world, connected, raw_stripe):
    # given both agencies' recharges failed, A's retry due in one hour and B's in two
    now = timezone.now()
    first = agency_wallet_at(world.a.agency, "1", raw=raw_stripe)
    second = agency_wallet_at(world.b.agency, "1", raw=raw_stripe)
    _failed(second, retry_at=now + timedelta(hours=2))
    _failed(first, retry_at=now + timedelta(hours=1))  # written last: the table holds B's row first

    # then none is retried before its time, A's at its time, both after two hours, oldest wallet first
    assert agency_wallets_due_for_retry() == []
    with time_machine.travel(now + timedelta(hours=1), tick=False):
        assert agency_wallets_due_for_retry() == [first.pk]
    with time_machine.travel(now + timedelta(hours=2, seconds=1), tick=False):
        assert agency_wallets_due_for_retry() == [first.pk, second.pk]
    # and neither is a new recharge meanwhile
    assert agency_wallets_due_for_recharge() == []


def test_the_job_reconciles_agency_charges_left_started_for_ten_minutes(world, connected, raw_stripe):
    # given a recharge committed STARTED whose worker never got to Stripe
    wallet = agency_wallet_at(world.a.agency, "1", raw=raw_stripe)
    charge = agency_wallet_recharge_start(wallet_id=wallet.pk)

    # then it is left to its worker for ten minutes, and reconciled after
    assert agency_charges_to_reconcile() == []
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert agency_charges_to_reconcile() == [charge.pk]


def _started_card_setup(world, localstripe) -> tuple[AgencyCardSetup, str]:
    """Agency A's admin starts a card setup and confirms it with Stripe.js, then closes the tab (no done)."""
    client = client_for(world.a, world.a.admin)
    started = client.post("/agency/settings/billing/card/")
    html = client.get(started["Location"]).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    setup_intent_id = client_secret.split("_secret_")[0]
    confirm_like_stripe_js(localstripe, setup_intent_id, client_secret, "5555555555554444")
    connection.set_schema_to_public()
    return AgencyCardSetup.objects.get(setup_intent_id=setup_intent_id), setup_intent_id


def _setup_succeeded_event(event_id: str, setup_intent_id: str):
    payload = event_payload(event_id=event_id, event_type="setup_intent.succeeded",
                            obj={"id": setup_intent_id, "status": "succeeded"}, account=None)
    return post_webhook(payload, sign(payload, secret=PLATFORM_WEBHOOK_SECRET), path=PLATFORM)


def test_the_platforms_webhook_alone_saves_the_agencys_card_and_says_stripe_did_it(world, connected, localstripe):
    # given a card Stripe confirmed, the browser never saying done
    setup, setup_intent_id = _started_card_setup(world, localstripe)
    assert setup.status == AgencyCardSetup.Status.STARTED

    # when Stripe's setup_intent.succeeded reaches the platform endpoint (and an event of a setup not ours)
    assert _setup_succeeded_event("evt_setup_1", setup_intent_id).status_code == 200
    assert _setup_succeeded_event("evt_setup_other", "seti_NotOneOfOurs").status_code == 200

    # then the setup is done and the card is the agency's
    connection.set_schema_to_public()
    setup.refresh_from_db()
    assert setup.status == AgencyCardSetup.Status.SUCCEEDED
    wallet = AgencyWallet.objects.get(agency=world.a.agency)
    assert (wallet.card_brand, wallet.card_last4) == ("visa", "4444")
    # and agency A's audit log says Stripe set it, not a person
    with tenant_context(world.a.agency):
        assert list(AuditEntry.objects.filter(subaccount=None, action=AuditEntry.Action.CARD_SET)
                    .values_list("actor", flat=True)) == ["Stripe"]
    # and agency B has no card
    connection.set_schema_to_public()
    assert not AgencyWallet.objects.filter(agency=world.b.agency).exclude(card_payment_method_id="").exists()


def test_a_setup_event_stripe_does_not_confirm_yet_leaves_the_setup_for_later(world, connected, localstripe):
    # given a card setup the admin started but never confirmed at Stripe
    client = client_for(world.a, world.a.admin)
    client.post("/agency/settings/billing/card/")
    connection.set_schema_to_public()
    setup = AgencyCardSetup.objects.get()

    # when an event for it arrives anyway (Stripe re-read says it is not confirmed)
    assert _setup_succeeded_event("evt_setup_early", setup.setup_intent_id).status_code == 200

    # then the setup waits for a later event or the browser; no card is saved
    connection.set_schema_to_public()
    setup.refresh_from_db()
    assert setup.status == AgencyCardSetup.Status.STARTED
    assert not AgencyWallet.objects.get(agency=world.a.agency).has_card


def test_the_audit_of_chosen_agencies_looks_at_their_wallets_only(world, connected, raw_stripe):
    # given agency B's wallet whose balance is not the sum of its entries (the trigger bypassed on purpose)
    agency_wallet_at(world.a.agency, "1", raw=raw_stripe)
    broken = agency_wallet_at(world.b.agency, "1", raw=raw_stripe)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # triggers off, this transaction only
        cursor.execute("UPDATE agency_wallets_agencywallet SET balance = balance + 1 WHERE id = %s", [broken.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")

    # then auditing agency A alone finds nothing, agency B alone (or every agency) finds B's wallet
    assert agency_wallets_audit(agencies=Agency.objects.filter(pk=world.a.agency.pk)) == []
    for agencies in (Agency.objects.filter(pk=world.b.agency.pk), None):
        problems = [str(finding) for finding in agency_wallets_audit(agencies=agencies)]
        assert any(p.startswith(f"agency wallet {broken.pk}: balance ") for p in problems), problems


NEVER_SENT = "No PaymentIntent carries this charge's key: it never reached Stripe."


def test_no_one_else_sends_or_gives_up_a_charge_while_a_worker_is_calling_stripe_for_it(world, connected, raw_stripe):
    # given a recharge committed two hours ago with no PaymentIntent, its worker in the middle of its Stripe call
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        charge = agency_wallet_recharge_start(wallet_id=agency_wallet_at(world.a.agency, "1", raw=raw_stripe).pk)
    calling, done, held = threading.Event(), threading.Event(), []

    def worker() -> None:
        try:
            with charge_call_guard(charge.pk, namespace=AGENCY_CHARGES.lock_namespace()) as ours:
                held.append(ours)
                calling.set()
                done.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert calling.wait(timeout=30) and held == [True]
        # when the reconciler, and a second delivery of the charge's job, run meanwhile
        agency_charge_reconcile(charge_id=charge.pk)
        agency_charge_execute(charge_id=charge.pk)
        # then both leave the charge to that worker: nothing sent to Stripe, nothing given up
        charge.refresh_from_db()
        assert charge.status == AgencyCharge.Status.STARTED and platform_intents(raw_stripe) == []
    finally:
        done.set()
        thread.join(timeout=30)

    # and once the worker is gone, the charge that never reached Stripe is given up, saying so
    agency_charge_reconcile(charge_id=charge.pk)
    charge.refresh_from_db()
    assert (charge.status, charge.failure_message) == (AgencyCharge.Status.ABANDONED, NEVER_SENT)


def test_a_charge_without_a_payment_intent_is_given_up_only_after_stripes_search_has_settled(
        world, connected, raw_stripe):
    # given a recharge committed STARTED that never reached Stripe
    charge = agency_wallet_recharge_start(wallet_id=agency_wallet_at(world.a.agency, "1", raw=raw_stripe).pk)

    # then at exactly an hour Stripe's search may still lag: it is left; a moment later it is given up
    with time_machine.travel(charge.created_at + SEARCH_SETTLES_AFTER, tick=False):
        agency_charge_reconcile(charge_id=charge.pk)
    charge.refresh_from_db()
    assert charge.status == AgencyCharge.Status.STARTED
    with time_machine.travel(charge.created_at + SEARCH_SETTLES_AFTER + timedelta(microseconds=1), tick=False):
        agency_charge_reconcile(charge_id=charge.pk)
    charge.refresh_from_db()
    assert (charge.status, charge.failure_message) == (AgencyCharge.Status.ABANDONED, NEVER_SENT)


def test_the_confirm_page_offers_only_the_charge_asked_for_and_only_to_its_agency(world, connected):
    # given two of agency A's recharges and one of agency B's, each waiting for its bank's confirmation
    waiting = {}
    for name, agency in (("a1", world.a.agency), ("a2", world.a.agency), ("b", world.b.agency)):
        wallet = agency_wallet_at(agency, "0")
        waiting[name] = AgencyCharge.objects.create(
            wallet=wallet, amount=Decimal("10"), currency="usd", stripe_customer_id="cus_test",
            payment_method_id="pm_test", status=AgencyCharge.Status.FAILED, failure_code="authentication_required",
            payment_intent_id=f"pi_waiting_{name}")

    # then each is found by its own id, by its own agency only
    assert agency_charge_awaiting_confirmation(agency=world.a.agency, charge_id=waiting["a1"].pk) == waiting["a1"]
    assert agency_charge_awaiting_confirmation(agency=world.a.agency, charge_id=waiting["a2"].pk) == waiting["a2"]
    assert agency_charge_awaiting_confirmation(agency=world.a.agency, charge_id=waiting["b"].pk) is None
    assert agency_charge_awaiting_confirmation(agency=world.b.agency, charge_id=waiting["b"].pk) == waiting["b"]


DECLINED = ChargeFailure(failure_code="card_declined", decline_code="insufficient_funds", advice_code="",
                         failure_message="Your card has insufficient funds.")
NEVER_AGAIN = ChargeFailure(failure_code="card_declined", decline_code="", advice_code="do_not_try_again",
                            failure_message="Your card was declined.")
NEEDS_THE_CARD_HOLDER = ChargeFailure(failure_code="authentication_required", decline_code="", advice_code="",
                                      failure_message="Your bank asks you to confirm this payment.")
NAMELESS = ChargeFailure(failure_code="", decline_code="", advice_code="", failure_message="Card refused.")


def _failure_email(agency, raw_stripe, failure: ChargeFailure, django_capture_on_commit_callbacks):
    """Agency A's recharge of $10.00 (balance 2) failed with `failure`, as charging records it: the email sent."""
    wallet = agency_wallet_at(agency, "2", raw=raw_stripe)
    charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        locked_wallet, locked = agency_charge_lock(charge.pk)
        AGENCY_CHARGES.failed(locked_wallet, locked, failure)
    wallet.refresh_from_db()
    [email] = mail.outbox
    return wallet, email


@pytest.mark.parametrize(("failure", "shown", "what"), [
    (DECLINED, "insufficient_funds", None),  # retried: the time is in the email
    (NEVER_AGAIN, "card_declined", "We will not retry this card: add a new card on Settings → Billing."),
    (NEEDS_THE_CARD_HOLDER, "authentication_required",
     "Your bank asks you to confirm the payment: open Settings → Billing and confirm it."),
    (NAMELESS, "declined", None),
])
def test_a_failed_recharge_emails_the_agencys_active_admins_what_happens_next(
        world, connected, raw_stripe, django_capture_on_commit_callbacks, failure, shown, what):
    # given agency A's second admin who left (inactive)
    with tenant_context(world.a.agency):
        User.objects.create_user("gone@alpha.test", role=User.Role.AGENCY_ADMIN, is_active=False)

    wallet, email = _failure_email(world.a.agency, raw_stripe, failure, django_capture_on_commit_callbacks)

    if what is None:
        what = (f"We will try again at {wallet.next_retry_at:%Y-%m-%d %H:%M} UTC, or add a new card on "
                "Settings → Billing to retry now.")
    assert email.to == [world.a.admin.email]
    assert email.subject == "Alpha Agency: LC Phone balance recharge failed"
    assert email.body == (
        "The automatic recharge of 10.00 USD of your agency's LC Phone balance with the platform failed: "
        f"{failure.failure_message} ({shown}).\n\n{what}\n\nCurrent balance: 2.00 USD.\n")


def test_the_audit_log_keeps_the_agency_wallets_settings_before_and_after(world, connected):
    agency_auto_recharge_set(agency=world.a.agency, amount=Decimal("25"), threshold=Decimal("5.5"), by=world.a.admin)
    with tenant_context(world.a.agency):
        entry = AuditEntry.objects.get(subaccount=None, action=AuditEntry.Action.AUTO_RECHARGE_CHANGED)
        assert (entry.actor, entry.before, entry.after) == (
            world.a.admin.email, {"wallet": "platform", "amount": "10.00", "threshold": "10.00"},
            {"wallet": "platform", "amount": "25.00", "threshold": "5.50"})


def test_the_agencys_customer_and_card_setups_name_the_agency_and_carry_our_keys(world, connected, localstripe,
                                                                                raw_stripe):
    # when agency A's admin starts two card setups
    first = agency_card_setup_start(agency=world.a.agency, by=world.a.admin)
    second = agency_card_setup_start(agency=world.a.agency, by=world.a.admin)

    # then one customer on the platform's account names the agency, its admin's email and the agency's id
    wallet = AgencyWallet.objects.get(agency=world.a.agency)
    customer = raw_stripe.v1.customers.retrieve(wallet.stripe_customer_id)
    assert (customer.name, customer.email, customer.metadata.to_dict()) == (
        "Alpha Agency", world.a.admin.email, {"rebill_agency": str(world.a.agency.pk)})
    # and each setup is its own row and SetupIntent, saying whose and which
    for setup in (first, second):
        setup.refresh_from_db()
        assert setup.started_by == world.a.admin.email and setup.wallet_id == wallet.pk
        intent = raw_stripe.v1.setup_intents.retrieve(setup.setup_intent_id)
        assert (intent.customer, intent.metadata.to_dict()) == (customer.id, {
            "rebill_agency": str(world.a.agency.pk), "rebill_agency_card_setup": str(setup.pk)})
    # and every write carried a key made from our own row's id
    keys = [r["idempotency_key"] for r in api_requests(localstripe) if r["method"] == "POST"]
    assert keys == [f"agency-customer:{wallet.pk}", f"agency-setup_intent:{first.pk}",
                    f"agency-setup_intent:{second.pk}"]


def test_a_recharge_names_its_charge_and_wallet_at_stripe_and_is_the_first_entry_of_a_new_wallet(
        world, connected, raw_stripe):
    # given agency A's wallet with no entry yet, below its threshold
    wallet = agency_wallet_at(world.a.agency, "0", raw=raw_stripe)

    # when it is recharged
    charge = agency_charge_execute(charge_id=agency_wallet_recharge_start(wallet_id=wallet.pk).pk)

    # then its PaymentIntent names our charge and the agency's wallet
    [intent] = platform_intents(raw_stripe)
    assert intent.metadata.to_dict() == {"rebill_charge": charge.idempotency_key,
                                         "rebill_agency_wallet": str(wallet.pk)}
    # and the credit is the wallet's first entry, saying which payment paid
    assert [(e.seq, e.kind, e.amount, e.balance_after, e.note, e.charge_id)
            for e in AgencyWalletEntry.objects.filter(wallet=wallet)] == [
        (1, AgencyWalletEntry.Kind.RECHARGE, Decimal("10"), Decimal("10"), f"Card charged ({intent.id})", charge.pk)]


def _card_confirmed(world, localstripe, number: str) -> AgencyCardSetup:
    """Agency A's admin starts a card setup and Stripe.js confirms `number` on it (no done yet)."""
    setup = agency_card_setup_start(agency=world.a.agency, by=world.a.admin)
    confirm_like_stripe_js(localstripe, setup.setup_intent_id, agency_card_setup_client_secret(setup=setup), number)
    return setup


def test_a_replacing_card_is_made_default_and_the_old_one_detached_with_keys_of_the_setup_row(
        world, connected, localstripe):
    # given agency A's card on file
    first = _card_confirmed(world, localstripe, "4242424242424242")
    agency_card_setup_complete(setup_id=first.pk, actor=world.a.admin.email)
    old_card = AgencyWallet.objects.get(agency=world.a.agency).card_payment_method_id

    # when the admin confirms another card
    second = _card_confirmed(world, localstripe, "5555555555554444")
    clear_recorded_requests(localstripe)
    before = timezone.now()
    setup = agency_card_setup_complete(setup_id=second.pk, actor=world.a.admin.email)

    # then the setup is done, saying when
    setup.refresh_from_db()
    assert setup.status == AgencyCardSetup.Status.SUCCEEDED and before <= setup.completed_at <= timezone.now()
    # and each write to Stripe carried a key made from this setup row (the replaced card's id in the detach's)
    keys = [r["idempotency_key"] for r in api_requests(localstripe) if r["method"] == "POST"]
    assert keys == [f"agency-default_card:setup:{second.pk}", f"agency-detach_replaced:setup:{second.pk}:{old_card}"]


def test_a_card_setup_canceled_at_stripe_fails_and_leaves_the_card_on_file(world, connected, localstripe,
                                                                           raw_stripe):
    # given agency A's card on file, and a second setup whose SetupIntent was canceled at Stripe
    first = _card_confirmed(world, localstripe, "4242424242424242")
    agency_card_setup_complete(setup_id=first.pk, actor=world.a.admin.email)
    wallet = AgencyWallet.objects.get(agency=world.a.agency)
    canceled = agency_card_setup_start(agency=world.a.agency, by=world.a.admin)
    raw_stripe.v1.setup_intents.cancel(canceled.setup_intent_id)

    # when it is finished
    before = timezone.now()
    setup = agency_card_setup_complete(setup_id=canceled.pk, actor=world.a.admin.email)

    # then it failed, saying when, and the card on file is the one it was
    setup.refresh_from_db()
    assert setup.status == AgencyCardSetup.Status.FAILED and before <= setup.completed_at <= timezone.now()
    assert AgencyWallet.objects.get(agency=world.a.agency).card_payment_method_id == wallet.card_payment_method_id


CARD_REPLACED = "agency_wallets.tasks.agency_wallet_card_replaced_task"


def test_a_confirmed_agency_card_queues_the_retry_of_that_wallets_recharge_once_committed(
        world, connected, localstripe, django_capture_on_commit_callbacks, jobs_left_queued):
    # given a card Stripe.js confirmed for agency A
    setup = _card_confirmed(world, localstripe, "4242424242424242")

    # when the setup is finished and its transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        agency_card_setup_complete(setup_id=setup.pk, actor=world.a.admin.email)

    # then the job that retries the wallet's failed recharge on the new card is queued for that wallet
    wallet = AgencyWallet.objects.get(agency=world.a.agency)
    assert [args for _schema, args in queued(CARD_REPLACED)] == [[wallet.pk]]


def test_another_agencys_recharge_in_flight_does_not_hold_this_one_back(world, connected, raw_stripe):
    # given agency B's recharge started and not yet settled
    in_flight = agency_wallet_recharge_start(wallet_id=agency_wallet_at(world.b.agency, "1", raw=raw_stripe).pk)
    assert in_flight.status == AgencyCharge.Status.STARTED

    # when agency A's wallet is below its threshold too
    wallet = agency_wallet_at(world.a.agency, "2", raw=raw_stripe)
    charge = agency_wallet_recharge_start(wallet_id=wallet.pk)

    # then A's recharge starts, on A's wallet, for its top-up of $10
    assert (charge.wallet_id, charge.status, charge.amount, charge.requested_by) == (
        wallet.pk, AgencyCharge.Status.STARTED, Decimal("10"), "auto-recharge")
