"""What a failed charge tells people and starts (wallets/services/failures.py): the email says what happens next and
what the client must do, to the right people; suspension and resumption are asked for only when they are due."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from people.models import User
from tests.billing.fixtures import ACCT_A
from tests.queued_jobs import queued as _queued
from wallets.locks import wallet_lock
from wallets.models import Charge, Wallet
from wallets.services import wallet_adjust, wallet_ensure
from wallets.services.failures import charge_failed, charge_succeeded_aftercare
from wallets.services.stripe_charging import ChargeFailure

DECLINED = ChargeFailure(failure_code="card_declined", decline_code="insufficient_funds", advice_code="",
                         failure_message="Your card has insufficient funds.")
NEEDS_THE_CARD_HOLDER = ChargeFailure(failure_code="authentication_required", decline_code="", advice_code="",
                                      failure_message="Your card was declined. This transaction requires "
                                                      "authentication.")
NEVER_AGAIN = ChargeFailure(failure_code="card_declined", decline_code="generic_decline",
                            advice_code="do_not_try_again", failure_message="Your card was declined.")


def _wallet_at(subaccount, balance: str) -> Wallet:
    wallet = wallet_ensure(subaccount=subaccount)
    if Decimal(balance):
        wallet_adjust(wallet=wallet, amount=Decimal(balance), note="test balance", by="t")
    return wallet


def _failed(wallet: Wallet, failure: ChargeFailure, *, kind: str = Charge.Kind.AUTO_RECHARGE,
            captured) -> list:
    """The charge's failure recorded as charging records it, then `charge_failed`; the on-commit callbacks."""
    charge = Charge.objects.create(wallet=wallet, kind=kind, status=Charge.Status.FAILED, amount=Decimal("12.5"),
                                   currency="usd", stripe_account_id=ACCT_A, stripe_customer_id="cus_test",
                                   payment_method_id="pm_test", failure_code=failure.failure_code,
                                   decline_code=failure.decline_code, failure_message=failure.failure_message,
                                   payment_intent_id="pi_test", completed_at=timezone.now())
    with captured() as callbacks, transaction.atomic():
        charge_failed(wallet=wallet_lock(wallet_id=wallet.pk), charge=charge, failure=failure)
    return callbacks


SUSPENSION_SYNC = "wallets.tasks.wallet_suspension_sync"


pytestmark = pytest.mark.usefixtures("jobs_left_queued")  # every test reads the jobs it queued




def _committed(callbacks: list) -> mail.EmailMessage | None:
    """Run what the transaction left for its commit; the email sent, if any."""
    for callback in callbacks:
        callback()
    assert len(mail.outbox) <= 1
    return mail.outbox[0] if mail.outbox else None


def test_a_declined_recharge_emails_when_it_is_tried_again(world, db, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        # given an agency admin who left (inactive), and a client with a positive balance
        User.objects.create_user("gone@alpha.test", role=User.Role.AGENCY_ADMIN, is_active=False)
        wallet = _wallet_at(client, "0.5")

        # when its auto-recharge is declined
        email = _committed(_failed(wallet, DECLINED, captured=django_capture_on_commit_callbacks))

        # then the account's and the agency's admins are emailed; nothing is suspended above zero
        assert _queued(SUSPENSION_SYNC) == []
        wallet.refresh_from_db()
        assert email.to == sorted([world.a.account_admins[0].email, world.a.admin.email])
        assert email.subject == f"Alpha Agency: phone credit recharge failed for {client.name}"
        assert email.body == (
            f"The automatic recharge of 12.50 USD for {client.name}'s phone credits failed: Your card has "
            "insufficient funds. (insufficient_funds).\n\n"
            f"We will try again at {wallet.next_retry_at:%Y-%m-%d %H:%M} UTC, or add a new card to retry now.\n\n"
            "Current balance: 0.50 USD.\n— Alpha Agency\n")


def test_a_recharge_the_bank_wants_confirmed_emails_the_client_what_to_do(world, db,
                                                                          django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        wallet = _wallet_at(client, "-1.5")

        email = _committed(_failed(wallet, NEEDS_THE_CARD_HOLDER, captured=django_capture_on_commit_callbacks))

        # then the email says how to confirm, and what resumes phone usage; the wallet's suspension is queued
        assert _queued(SUSPENSION_SYNC) == [("alpha", [wallet.pk])]
        body = email.body
        assert body.endswith(
            "failed: Your card was declined. This transaction requires authentication. (authentication_required).\n\n"
            "Your bank asks you to confirm the payment: open Settings → Company Billing and confirm it.\n\n"
            "Current balance: -1.50 USD.\n"
            "Phone usage is suspended while the balance is not positive: at least 1.51 USD is needed to resume it.\n"
            "— Alpha Agency\n")


def test_a_decline_never_to_retry_says_so_and_zero_is_not_positive(world, db, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        wallet = _wallet_at(world.a.subaccounts[0], "0")

        email = _committed(_failed(wallet, NEVER_AGAIN, captured=django_capture_on_commit_callbacks))

        assert _queued(SUSPENSION_SYNC) == [("alpha", [wallet.pk])]  # a balance of zero is not positive
        body = email.body
        assert "\n\nWe will not retry this card: add a new card on Settings → Company Billing.\n\n" in body
        assert body.endswith("Current balance: 0.00 USD.\nPhone usage is suspended while the balance is not "
                             "positive: at least 0.01 USD is needed to resume it.\n— Alpha Agency\n")


def test_an_already_suspended_wallet_is_not_suspended_again(world, db, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        wallet = _wallet_at(world.a.subaccounts[0], "-1")
        Wallet.objects.filter(pk=wallet.pk).update(suspended_at=timezone.now())
        assert _committed(_failed(wallet, DECLINED, captured=django_capture_on_commit_callbacks)) is not None
        assert _queued(SUSPENSION_SYNC) == []


def test_a_failed_add_balance_changes_nothing_and_emails_nobody(world, db, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        wallet = _wallet_at(world.a.subaccounts[0], "-1")
        callbacks = _failed(wallet, DECLINED, kind=Charge.Kind.MANUAL, captured=django_capture_on_commit_callbacks)
        assert _committed(callbacks) is None and _queued(SUSPENSION_SYNC) == []
        wallet.refresh_from_db()
        assert wallet.recharge_state == Wallet.RechargeState.OK and wallet.next_retry_at is None


@pytest.mark.parametrize(("balance", "suspended", "resumes"), [
    ("0.5", True, True),
    ("0", True, False),  # still not positive: stays suspended
    ("0.5", False, False),  # nothing to resume
])
def test_a_successful_charge_resumes_a_suspended_wallet_once_its_balance_is_positive(
        world, db, django_capture_on_commit_callbacks, balance, suspended, resumes):
    with tenant_context(world.a.agency):
        wallet = _wallet_at(world.a.subaccounts[0], balance)
        Wallet.objects.filter(pk=wallet.pk).update(recharge_state=Wallet.RechargeState.FAILED, failed_retries=2,
                                                   suspended_at=timezone.now() if suspended else None)
        with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
            charge_succeeded_aftercare(wallet=wallet_lock(wallet_id=wallet.pk), charge=Charge())
        assert _committed(callbacks) is None
        assert _queued(SUSPENSION_SYNC) == ([("alpha", [wallet.pk])] if resumes else [])
        wallet.refresh_from_db()
        assert wallet.recharge_state == Wallet.RechargeState.OK and wallet.failed_retries == 0


def test_a_failure_stripe_gave_no_code_for_is_called_declined(world, db, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        wallet = _wallet_at(world.a.subaccounts[0], "3")
        nameless = ChargeFailure(failure_code="", decline_code="", advice_code="", failure_message="Card refused.")
        email = _committed(_failed(wallet, nameless, captured=django_capture_on_commit_callbacks))
        assert "phone credits failed: Card refused. (declined).\n\n" in email.body
