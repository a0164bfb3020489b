"""The agency's card and the auto-recharge of its wallet with the platform (DESIGN §6, §7), on the platform's own
Stripe account (`PlatformStripe`: the plain API key, no `Stripe-Account` header — not Connect).

Cards are confirmed by Stripe.js's card element, as on Company Billing, and read back from Stripe
(`billing.services.setup_intent_card_confirm`). Charges follow the steps every wallet shares
(wallets.services.stripe_charging); `AgencyCharges` says what is particular here: the platform's account, the
agency ledger's recharge entry, every agency admin emailed on a failure. Runs in the public schema or an agency's
(the agency's people are read in its own schema).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.models import Agency
from agencies.plans import auto_recharge_errors
from agency_wallets.models import AgencyCardSetup, AgencyCharge, AgencyWallet, AgencyWalletEntry
from billing.services import CardNotConfirmed, setup_intent_card_confirm
from people.models import User
from stripe_connect.gateway import PlatformStripe, StripeCalls
from wallets.money import recharge_amount
from wallets.services import stripe_charging
from wallets.services.audit import AuditFinding, ledger_audit
from wallets.services.stripe_charging import METADATA_KEY, ChargeBook, ChargeFailure

logger = logging.getLogger(__name__)


def _key(what: str, *row_ids: object) -> str:
    """`agency-<what>:<our row id>[:...]`: public rows (no schema), never like a client's `charge:<schema>:<id>`."""
    return ":".join([f"agency-{what}", *(str(row_id) for row_id in row_ids)])


def agency_charge_key(charge_id: int) -> str:
    return _key("charge", charge_id)


def _require_agency_admin(by: User) -> None:
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins manage the agency's billing with the platform.")


def agency_wallet_ensure(*, agency: Agency) -> AgencyWallet:
    wallet, _ = AgencyWallet.objects.get_or_create(agency=agency)
    return wallet


def _wallet_lock(wallet_id: int) -> AgencyWallet:
    return AgencyWallet.objects.select_for_update(of=("self",)).select_related("agency").get(pk=wallet_id)


def agency_charge_lock(charge_id: int) -> tuple[AgencyWallet, AgencyCharge]:
    """The charge's wallet, then the charge (the order every writer uses)."""
    wallet_id = AgencyCharge.objects.values_list("wallet_id", flat=True).get(pk=charge_id)
    return _wallet_lock(wallet_id), AgencyCharge.objects.select_for_update().get(pk=charge_id)


def _audit(*, agency: Agency, actor: str, action: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Agency-wide rows of the agency's audit log (no sub-account)."""
    from subaccounts.audit import audit_record

    with tenant_context(agency):
        audit_record(subaccount=None, actor=actor, action=action, before={"wallet": "platform", **before},
                     after={"wallet": "platform", **after})


# The agency's card --------------------------------------------------------------------------------------------------
def agency_card_setup_start(*, agency: Agency, by: User) -> AgencyCardSetup:
    """A SetupIntent (off_session) for the agency's customer on the platform's account; Stripe.js confirms it.
    The customer and the setup row are each committed before the call that uses them (their ids are the keys)."""
    _require_agency_admin(by)
    api = PlatformStripe()
    wallet = agency_wallet_ensure(agency=agency)
    with transaction.atomic():
        wallet = _wallet_lock(wallet.pk)
        if not wallet.stripe_customer_id:
            customer = api.customer_create(name=agency.name, email=by.email,
                                           metadata={"rebill_agency": str(agency.pk)},
                                           idempotency_key=_key("customer", wallet.pk))
            wallet.stripe_customer_id = customer.id
            wallet.save(update_fields=["stripe_customer_id"])
    setup = AgencyCardSetup.objects.create(wallet=wallet, started_by=by.email)
    setup_intent = api.setup_intent_create(
        customer_id=wallet.stripe_customer_id,
        metadata={"rebill_agency": str(agency.pk), "rebill_agency_card_setup": str(setup.pk)},
        idempotency_key=_key("setup_intent", setup.pk))
    setup.setup_intent_id = setup_intent.id
    setup.save(update_fields=["setup_intent_id"])
    return setup


def agency_card_setup_client_secret(*, setup: AgencyCardSetup) -> str:
    return str(PlatformStripe().setup_intent_retrieve(setup.setup_intent_id).client_secret)


CARD_FIELDS = ("card_payment_method_id", "card_brand", "card_last4", "card_exp_month", "card_exp_year")


@transaction.atomic
def agency_card_setup_complete(*, setup_id: int, actor: str) -> AgencyCardSetup:
    """Finish a card setup from what Stripe says (the browser's "done" and the webhook both come here; both lock
    the setup, so it is done once). The confirmed card becomes the agency's card; a failed recharge retries now."""
    setup = AgencyCardSetup.objects.select_for_update().get(pk=setup_id)
    if setup.status != AgencyCardSetup.Status.STARTED:
        return setup
    wallet = _wallet_lock(setup.wallet_id)
    api = PlatformStripe()
    payment_method_id = setup_intent_card_confirm(
        api=api, setup_intent_id=setup.setup_intent_id, customer_id=wallet.stripe_customer_id,
        previous_payment_method_id=wallet.card_payment_method_id,
        key=lambda what, *more: _key(what, "setup", setup.pk, *more))
    setup.status = AgencyCardSetup.Status.FAILED if payment_method_id is None else AgencyCardSetup.Status.SUCCEEDED
    setup.completed_at = timezone.now()
    setup.save(update_fields=["status", "completed_at"])
    if payment_method_id is None:
        return setup
    before = {name: getattr(wallet, name) for name in CARD_FIELDS}
    card: Any = api.payment_method_retrieve(payment_method_id).card
    wallet.card_payment_method_id = payment_method_id
    wallet.card_brand = str(getattr(card, "brand", None) or "")
    wallet.card_last4 = str(getattr(card, "last4", None) or "")
    wallet.card_exp_month = int(getattr(card, "exp_month", None) or 0) or None
    wallet.card_exp_year = int(getattr(card, "exp_year", None) or 0) or None
    wallet.save(update_fields=list(CARD_FIELDS))
    from subaccounts.models import AuditEntry

    _audit(agency=wallet.agency, actor=actor, action=AuditEntry.Action.CARD_SET, before=before,
           after={name: getattr(wallet, name) for name in CARD_FIELDS})
    from agency_wallets.tasks import agency_wallet_card_replaced_task

    transaction.on_commit(lambda: agency_wallet_card_replaced_task.delay(wallet.pk))
    return setup


# Auto-recharge settings -----------------------------------------------------------------------------------------------
@transaction.atomic
def agency_auto_recharge_set(*, agency: Agency, amount: Decimal, threshold: Decimal, by: User) -> AgencyWallet:
    """"Add <amount> when the balance is below <threshold>" for the agency's wallet: the client wallet's rules."""
    _require_agency_admin(by)
    errors = auto_recharge_errors(amount=amount, threshold=threshold)
    if errors:
        raise ValidationError(errors)
    wallet = _wallet_lock(agency_wallet_ensure(agency=agency).pk)
    before = {"amount": f"{wallet.auto_recharge_amount:.2f}", "threshold": f"{wallet.auto_recharge_threshold:.2f}"}
    wallet.auto_recharge_amount, wallet.auto_recharge_threshold = amount, threshold
    wallet.save(update_fields=["auto_recharge_amount", "auto_recharge_threshold"])
    after = {"amount": f"{amount:.2f}", "threshold": f"{threshold:.2f}"}
    if after != before:
        from subaccounts.models import AuditEntry

        _audit(agency=agency, actor=by.email, action=AuditEntry.Action.AUTO_RECHARGE_CHANGED, before=before,
               after=after)
    return wallet


# Recharging -----------------------------------------------------------------------------------------------------------
@transaction.atomic
def agency_wallet_recharge_start(*, wallet_id: int, retry: bool = False) -> AgencyCharge | None:
    """Start an auto-recharge if one is due: below the threshold, a card on file, none in flight, not waiting for a
    retry (unless this is the scheduled retry). Committed before any Stripe call."""
    wallet = _wallet_lock(wallet_id)
    if wallet.balance >= wallet.auto_recharge_threshold or not wallet.has_card:
        return None
    if not stripe_charging.recharge_may_start(wallet=wallet, retry=retry):
        return None
    if AgencyCharge.objects.filter(wallet=wallet, status__in=AgencyCharge.IN_FLIGHT).exists():
        return None
    amount = recharge_amount(balance=wallet.balance, top_up=wallet.auto_recharge_amount, currency=wallet.currency)
    charge: AgencyCharge | None = stripe_charging.charge_row_start(
        model=AgencyCharge, key=agency_charge_key, wallet=wallet, amount=amount, currency=wallet.currency,
        stripe_customer_id=wallet.stripe_customer_id, payment_method_id=wallet.card_payment_method_id,
        requested_by="auto-recharge")
    if charge is not None and retry:
        stripe_charging.recharge_retry_counted(wallet=wallet)
    return charge


def agency_wallets_due_for_recharge() -> list[int]:
    """Wallets below their threshold with a card and no failure pending (a few at a time, never every agency)."""
    return list(AgencyWallet.objects.filter(balance__lt=F("auto_recharge_threshold"),
                                            recharge_state=AgencyWallet.RechargeState.OK)
                .exclude(card_payment_method_id="").order_by("pk").values_list("pk", flat=True))


def agency_wallets_due_for_retry() -> list[int]:
    return list(AgencyWallet.objects.filter(recharge_state=AgencyWallet.RechargeState.FAILED,
                                            next_retry_at__lte=timezone.now())
                .order_by("pk").values_list("pk", flat=True))


@transaction.atomic
def agency_wallet_card_replaced(*, wallet_id: int) -> AgencyCharge | None:
    """A new card: a failed recharge is retried at once (and the retry schedule restarts)."""
    wallet = _wallet_lock(wallet_id)
    stripe_charging.wallet_recharge_ok(wallet=wallet)
    return agency_wallet_recharge_start(wallet_id=wallet.pk)


def _agency_admin_emails(agency: Agency) -> list[str]:
    with tenant_context(agency):
        return list(User.objects.filter(role=User.Role.AGENCY_ADMIN, is_active=True).order_by("email")
                    .values_list("email", flat=True))


class AgencyCharges(ChargeBook):
    """Agency wallets' charges: on the platform's own account, in the public schema."""

    charge_model = AgencyCharge

    @staticmethod
    def lock_namespace() -> str:
        return "agency_wallets.charge"

    def lock(self, charge_id: int) -> tuple[AgencyWallet, AgencyCharge]:
        return agency_charge_lock(charge_id)

    def api_for(self, charge: AgencyCharge) -> StripeCalls | str:
        return PlatformStripe()

    def metadata(self, charge: AgencyCharge) -> dict[str, str]:
        return {METADATA_KEY: str(charge.idempotency_key), "rebill_agency_wallet": str(charge.wallet_id)}

    def credit(self, wallet: AgencyWallet, charge: AgencyCharge, intent: Any) -> None:
        last = AgencyWalletEntry.objects.filter(wallet=wallet).order_by("-seq").values_list("seq", flat=True).first()
        AgencyWalletEntry.objects.create(
            wallet=wallet, seq=int(last or 0) + 1, kind=AgencyWalletEntry.Kind.RECHARGE, amount=charge.amount,
            balance_after=wallet.balance + charge.amount, charge=charge, note=f"Card charged ({intent.id})")
        AgencyWallet.objects.filter(pk=wallet.pk).update(balance=F("balance") + charge.amount)
        wallet.balance += charge.amount

    def failed(self, wallet: AgencyWallet, charge: AgencyCharge, failure: ChargeFailure) -> None:
        stripe_charging.wallet_recharge_failed(wallet=wallet, failure=failure)
        recipients = _agency_admin_emails(wallet.agency)
        if failure.needs_the_card_holder:
            what = "Your bank asks you to confirm the payment: open Settings → Billing and confirm it."
        elif wallet.next_retry_at is not None:
            what = (f"We will try again at {wallet.next_retry_at:%Y-%m-%d %H:%M} UTC, or add a new card on "
                    "Settings → Billing to retry now.")
        else:
            what = "We will not retry this card: add a new card on Settings → Billing."
        message = (f"The automatic recharge of {charge.amount:.2f} {charge.currency.upper()} of your agency's "
                   f"LC Phone balance with the platform failed: {failure.failure_message} "
                   f"({wallet.last_failure_code or 'declined'}).\n\n{what}\n\n"
                   f"Current balance: {wallet.balance:.2f} {wallet.currency.upper()}.\n")
        subject = f"{wallet.agency.name}: LC Phone balance recharge failed"
        if recipients:
            transaction.on_commit(lambda: send_mail(subject=subject, message=message, from_email=None,
                                                    recipient_list=recipients))


AGENCY_CHARGES = AgencyCharges()


def agency_charge_execute(*, charge_id: int) -> AgencyCharge:
    return stripe_charging.charge_execute(AGENCY_CHARGES, charge_id=charge_id)  # type: ignore[no-any-return]


def agency_charge_reconcile(*, charge_id: int) -> AgencyCharge:
    return stripe_charging.charge_reconcile(AGENCY_CHARGES, charge_id=charge_id)  # type: ignore[no-any-return]


def agency_charges_to_reconcile() -> list[int]:
    return stripe_charging.charges_to_reconcile(AGENCY_CHARGES)


def agency_charge_record_from_stripe(*, intent: Any) -> AgencyCharge | None:
    return stripe_charging.charge_record_from_stripe(AGENCY_CHARGES, intent=intent)  # type: ignore[no-any-return]


def agency_charge_awaiting_confirmation(*, agency: Agency, charge_id: int) -> AgencyCharge | None:
    """The agency's charge whose bank asked the card holder to confirm it (its PaymentIntent still open)."""
    return stripe_charging.charges_awaiting_confirmation(AGENCY_CHARGES).filter(wallet__agency=agency,
                                                                                pk=charge_id).first()


def agency_charge_confirmation_secret(*, charge: AgencyCharge) -> str:
    """The PaymentIntent's client secret for Stripe.js's confirmCardPayment, on the platform's account."""
    return str(stripe_charging.confirmation_intent(AGENCY_CHARGES, charge=charge).client_secret)


def agency_charge_confirmed_on_session(*, charge_id: int) -> AgencyCharge:
    """The agency admin says they confirmed in the browser: ask Stripe, and credit the wallet (once) if it
    succeeded."""
    intent = stripe_charging.confirmation_intent(AGENCY_CHARGES, charge=AgencyCharge.objects.get(pk=charge_id))
    return stripe_charging.charge_record(AGENCY_CHARGES, charge_id=charge_id, intent=intent)  # type: ignore[no-any-return]


def agency_card_setup_from_stripe(*, setup_intent_id: str) -> AgencyCardSetup | None:
    """A platform-account webhook about a SetupIntent: finish the agency card setup it belongs to, if any."""
    setup = AgencyCardSetup.objects.filter(setup_intent_id=setup_intent_id).first()
    if setup is None:
        return None
    try:
        return agency_card_setup_complete(setup_id=setup.pk, actor="Stripe")
    except CardNotConfirmed:
        return setup  # Stripe says otherwise now; a later event (or the browser) finishes it


def agency_wallets_audit(*, stripe_since: datetime | None = None,
                         agencies: QuerySet[Agency] | None = None) -> list[AuditFinding]:
    """Every agency's wallet with the platform (or those of `agencies`): balance == Σ entries, the chain, one credit
    per succeeded charge, and succeeded charges as the platform's Stripe account has them."""
    wallets = AgencyWallet.objects.all() if agencies is None else AgencyWallet.objects.filter(agency__in=agencies)
    return ledger_audit(wallets=wallets, entries=AgencyWalletEntry.objects.filter(wallet__in=wallets),
                        charges=AgencyCharge.objects.filter(wallet__in=wallets),
                        credit_kinds=[AgencyWalletEntry.Kind.RECHARGE], api=PlatformStripe(), stripe_since=stripe_since,
                        ledger="agency wallet")
