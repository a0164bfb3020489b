"""Recharging a client's wallet through the agency's Stripe account (DESIGN §5, §7).

`wallet_recharge_start` (auto-recharge) and `wallet_add_balance_start` (Add balance) decide and commit a STARTED
charge (wallet locked; one charge in flight per wallet); its key is `charge:<schema>:<id>`. Calling Stripe,
recording its answer (the wallet credited once) and reconciling are the steps every wallet shares
(wallets.services.stripe_charging); `ClientCharges` is what is particular to a client's wallet: the agency's
current connected account, the ledger entry, the emails, suspension.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from billing.models import BillingProfile
from rebill.tenancy import current_schema
from rebilling.models import SubAccountRebilling
from rebilling.selectors import rebilling_decision_for
from stripe_connect.gateway import AgencyStripe, StripeCalls
from stripe_connect.money import currency_exponent
from stripe_connect.selectors import NotConnected, agency_stripe, current_agency
from wallets.locks import charge_lock, wallet_lock
from wallets.models import Charge, Wallet, WalletEntry
from wallets.money import recharge_amount
from wallets.services import stripe_charging
from wallets.services.failures import charge_failed, charge_succeeded_aftercare
from wallets.services.ledger import charge_key, entry_append
from wallets.services.stripe_charging import METADATA_KEY, ChargeBook, ChargeFailure, RechargeRefused

MAXIMUM_ADD_BALANCE = Decimal("10000")

_PLAIN_AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?")


def _card(*, account_id: str, subaccount_id: int) -> BillingProfile | None:
    """The card on file, if it lives on the agency's current account (a card of an old account can't be charged)."""
    return BillingProfile.objects.filter(subaccount_id=subaccount_id, stripe_account_id=account_id).exclude(
        card_payment_method_id="").first()


def _start(*, wallet: Wallet, kind: str, amount: Decimal, api: AgencyStripe, profile: BillingProfile,
           by: str) -> Charge | None:
    return stripe_charging.charge_row_start(
        model=Charge, key=charge_key, wallet=wallet, kind=kind, amount=amount, currency=wallet.currency,
        stripe_account_id=api.account_id, stripe_customer_id=profile.stripe_customer_id,
        payment_method_id=profile.card_payment_method_id, requested_by=by)


@transaction.atomic
def wallet_recharge_start(*, wallet_id: int, retry: bool = False) -> Charge | None:
    """Start an auto-recharge if one is due: balance below the threshold, none in flight, a card on file, not
    waiting for a retry or for the client (unless this is the scheduled retry). Committed before any Stripe call."""
    wallet = wallet_lock(wallet_id=wallet_id)
    settings = SubAccountRebilling.objects.filter(subaccount_id=wallet.subaccount_id, switched_on=True).first()
    if settings is None or wallet.balance >= settings.auto_recharge_threshold:
        return None
    if not stripe_charging.recharge_may_start(wallet=wallet, retry=retry):
        return None
    if Charge.objects.filter(wallet=wallet, status__in=Charge.IN_FLIGHT).exists():
        return None
    if not rebilling_decision_for(subaccount=wallet.subaccount).is_enabled:
        return None
    try:
        api = agency_stripe(agency=current_agency())
    except NotConnected:
        return None
    profile = _card(account_id=api.account_id, subaccount_id=wallet.subaccount_id)
    if profile is None:
        return None
    amount = recharge_amount(balance=wallet.balance, top_up=settings.auto_recharge_amount, currency=wallet.currency)
    charge = _start(wallet=wallet, kind=Charge.Kind.AUTO_RECHARGE, amount=amount, api=api, profile=profile,
                    by="auto-recharge")
    if charge is not None and retry:
        stripe_charging.recharge_retry_counted(wallet=wallet)
    return charge


def add_balance_amount(raw: str, *, currency: str) -> Decimal:
    """The client's typed amount, or a clear error: whole minor units, at least the minimum, within reason."""
    from agencies.plans import MINIMUM_RECHARGE

    text = str(raw).strip().removeprefix("$").replace(",", "")
    if not _PLAIN_AMOUNT.fullmatch(text):  # no exponents, signs, NaN or Infinity
        raise RechargeRefused("Enter an amount, e.g. 25.00.")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise RechargeRefused("Enter an amount, e.g. 25.00.") from None
    if amount != amount.quantize(Decimal(1).scaleb(-currency_exponent(currency))):
        raise RechargeRefused("Use whole cents.")
    if amount < MINIMUM_RECHARGE:
        raise RechargeRefused(f"The smallest amount is ${MINIMUM_RECHARGE}.")
    if amount > MAXIMUM_ADD_BALANCE:
        raise RechargeRefused(f"Add at most ${MAXIMUM_ADD_BALANCE:,.0f} at a time.")
    return amount


@transaction.atomic
def wallet_add_balance_start(*, wallet_id: int, amount: Decimal, by: str) -> Charge:
    """Add balance (Company Billing, account admins): charge the card on file now. Raises RechargeRefused."""
    wallet = wallet_lock(wallet_id=wallet_id)
    amount = add_balance_amount(str(amount), currency=wallet.currency)
    if Charge.objects.filter(wallet=wallet, status__in=Charge.IN_FLIGHT).exists():
        raise RechargeRefused("A payment is already in progress for this account. Please wait a moment.")
    try:
        api = agency_stripe(agency=current_agency())
    except NotConnected:
        raise RechargeRefused("Card payments are not set up by your agency yet.") from None
    profile = _card(account_id=api.account_id, subaccount_id=wallet.subaccount_id)
    if profile is None:
        raise RechargeRefused("Add a card first.")
    charge = _start(wallet=wallet, kind=Charge.Kind.MANUAL, amount=amount, api=api, profile=profile, by=by)
    if charge is None:
        raise RechargeRefused("A payment is already in progress for this account. Please wait a moment.")
    return charge


class ClientCharges(ChargeBook):
    """Client wallets' charges: on the agency's *current* connected account, in the agency's schema."""

    charge_model = Charge

    @staticmethod
    def lock_namespace() -> str:
        return f"wallets.charge:{current_schema()}"

    def lock(self, charge_id: int) -> tuple[Wallet, Charge]:
        return charge_lock(charge_id=charge_id)

    def api_for(self, charge: Charge) -> StripeCalls | str:
        try:
            api = agency_stripe(agency=current_agency())
        except NotConnected:
            return "The agency's Stripe account is no longer connected."
        if api.account_id != charge.stripe_account_id:
            return "The agency connected another Stripe account after this charge started."
        return api

    def metadata(self, charge: Charge) -> dict[str, str]:
        return {METADATA_KEY: str(charge.idempotency_key), "rebill_wallet": str(charge.wallet_id)}

    def credit(self, wallet: Wallet, charge: Charge, intent: Any) -> None:
        kind = (WalletEntry.Kind.RECHARGE if charge.kind == Charge.Kind.AUTO_RECHARGE
                else WalletEntry.Kind.MANUAL_TOP_UP)
        entry_append(wallet=wallet, kind=kind, amount=charge.amount, charge=charge,
                     note=f"Card charged ({intent.id})", created_by=charge.requested_by or "Stripe")

    def failed(self, wallet: Wallet, charge: Charge, failure: ChargeFailure) -> None:
        charge_failed(wallet=wallet, charge=charge, failure=failure)

    def succeeded(self, wallet: Wallet, charge: Charge) -> None:
        charge_succeeded_aftercare(wallet=wallet, charge=charge)


CLIENT_CHARGES = ClientCharges()


def charge_execute(*, charge_id: int) -> Charge:
    """Call Stripe for a STARTED charge (same key on every rerun), then record its answer."""
    return stripe_charging.charge_execute(CLIENT_CHARGES, charge_id=charge_id)  # type: ignore[no-any-return]


def charge_record(*, charge_id: int, intent: Any) -> Charge:
    """What Stripe says about the charge's PaymentIntent now. Credits the wallet once when it succeeded."""
    return stripe_charging.charge_record(CLIENT_CHARGES, charge_id=charge_id, intent=intent)  # type: ignore[no-any-return]


def charge_record_from_stripe(*, intent: Any) -> Charge | None:
    """A webhook's PaymentIntent (already re-read from Stripe): record it on its charge, if it is one of ours."""
    return stripe_charging.charge_record_from_stripe(CLIENT_CHARGES, intent=intent)  # type: ignore[no-any-return]


def charge_reconcile(*, charge_id: int) -> Charge:
    """Settle a charge left STARTED or processing by looking its PaymentIntent up — never by charging again."""
    return stripe_charging.charge_reconcile(CLIENT_CHARGES, charge_id=charge_id)  # type: ignore[no-any-return]


def charges_to_reconcile(*, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
    return stripe_charging.charges_to_reconcile(CLIENT_CHARGES, older_than=older_than)


# The client confirming on session (authentication_required) ---------------------------------------------------------
def charge_awaiting_confirmation(*, wallet: Wallet, charge_id: int) -> Charge | None:
    """The wallet's charge whose bank asked the card holder to confirm it (its PaymentIntent still open)."""
    return stripe_charging.charges_awaiting_confirmation(CLIENT_CHARGES).filter(wallet=wallet, pk=charge_id).first()


def charge_confirmation_secret(*, charge: Charge) -> str:
    """The PaymentIntent's client secret for Stripe.js's confirmCardPayment, through the agency's current account."""
    return str(stripe_charging.confirmation_intent(CLIENT_CHARGES, charge=charge).client_secret)


def charge_confirmed_on_session(*, charge_id: int) -> Charge:
    """The client says they confirmed in the browser: ask Stripe, and credit the wallet (once) if it succeeded."""
    intent = stripe_charging.confirmation_intent(CLIENT_CHARGES, charge=Charge.objects.get(pk=charge_id))
    return charge_record(charge_id=charge_id, intent=intent)
