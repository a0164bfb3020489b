"""Writes about a sub-account's billing: its Stripe customer, the card on file, payment requests.

Every Stripe write carries an idempotency key made of our schema and a row id of ours, so a retry (by us,
by a double click, by a webhook racing the browser) never makes a second object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import stripe
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.models import BillingProfile, CardSetup, PaymentRequest
from billing.selectors import (
    is_account_admin,
    payment_link_refusal_for,
    payment_link_request,
    payment_link_salt,
    payment_request_refusal,
)
from people.models import User
from rebill.mail import email_send
from rebill.tenancy import current_schema
from rebilling.selectors import rebilling_is_switched_on
from stripe_connect.gateway import AgencyStripe, StripeCalls
from stripe_connect.selectors import NotConnected, agency_stripe, current_agency
from subaccounts.audit import audit_record
from subaccounts.models import AuditEntry, SubAccount
from subaccounts.selectors import subaccount_account_admins

logger = logging.getLogger(__name__)

CARD_FIELDS = ("card_payment_method_id", "card_brand", "card_last4", "card_exp_month", "card_exp_year")


class CardNotConfirmed(Exception):
    pass


def _key(kind: str, *row_ids: object) -> str:
    """`<what>:<schema>:<our row id>[:...]`: the same action on the same row always sends the same key."""
    return ":".join([kind, current_schema(), *(str(row_id) for row_id in row_ids)])


def _require_account_admin(*, subaccount: SubAccount, user: User) -> None:
    # Agencies must not add their own card for a client: only that sub-account's account admins may.
    if not is_account_admin(user=user, subaccount=subaccount):
        raise PermissionError("Only the sub-account's account admins manage its card.")


def _card_state(profile: BillingProfile) -> dict[str, Any]:
    return {name: getattr(profile, name) for name in CARD_FIELDS}


def _profile_locked(subaccount: SubAccount) -> BillingProfile:
    BillingProfile.objects.get_or_create(subaccount=subaccount)
    return BillingProfile.objects.select_for_update().get(subaccount=subaccount)


def _current_stripe() -> AgencyStripe:
    try:
        return agency_stripe(agency=current_agency())
    except NotConnected as error:
        raise ValidationError(str(error)) from None


class OtherStripeAccount(ValidationError):
    """A row made on a Stripe account the agency is no longer connected to: nothing is done with it."""


def _current_stripe_for(*, account_id: str, what: str) -> AgencyStripe:
    """The agency's *current* connection, refusing a row whose Stripe objects live on another account."""
    api = _current_stripe()
    if account_id != api.account_id:
        raise OtherStripeAccount(
            f"This {what} was made on a Stripe account your agency is no longer connected to, so nothing was "
            "changed. Start again from Company Billing.")
    return api


def _deleted(customer: stripe.Customer) -> bool:
    return bool(getattr(customer, "deleted", False))


def _default_payment_method_id(customer: stripe.Customer) -> str | None:
    invoice_settings = getattr(customer, "invoice_settings", None)
    default = getattr(invoice_settings, "default_payment_method", None) if invoice_settings else None
    return default if isinstance(default, str) else getattr(default, "id", None)


# The card on file, from Stripe's current state ---------------------------------------------------------------------
@transaction.atomic
def billing_card_sync(*, profile: BillingProfile, api: AgencyStripe, actor: str = "Stripe") -> BillingProfile:
    """Make the card on file what Stripe says now: the customer's default card, else its newest card.

    Webhooks arrive twice and out of order, so this never looks at an event's payload, only at Stripe; and
    it reads Stripe with the row locked, so the last writer has always read the latest state.
    """
    profile = BillingProfile.objects.select_for_update().select_related("subaccount").get(pk=profile.pk)
    if profile.stripe_account_id != api.account_id or not profile.stripe_customer_id:
        return profile
    before = _card_state(profile)
    try:
        customer = api.customer_retrieve(profile.stripe_customer_id)
    except stripe.InvalidRequestError as error:
        if error.code != "resource_missing":
            raise
        customer = None  # not on this account (any more): no card
    cards: list[stripe.PaymentMethod] = (
        [] if customer is None or _deleted(customer) else api.customer_cards(customer.id))
    default_id = _default_payment_method_id(customer) if customer is not None else None
    chosen = next((c for c in cards if c.id == default_id), None) or (cards[0] if cards else None)
    card = getattr(chosen, "card", None) if chosen is not None else None
    if chosen is not None and card is not None:
        profile.card_payment_method_id = chosen.id
        profile.card_brand = str(getattr(card, "brand", None) or "")
        profile.card_last4 = str(getattr(card, "last4", None) or "")
        profile.card_exp_month = int(getattr(card, "exp_month", None) or 0) or None
        profile.card_exp_year = int(getattr(card, "exp_year", None) or 0) or None
    else:
        for name in CARD_FIELDS:
            setattr(profile, name, None if name.startswith("card_exp") else "")
    after = _card_state(profile)
    if after != before:
        profile.card_updated_at = timezone.now()
        profile.save(update_fields=[*CARD_FIELDS, "card_updated_at"])
        audit_record(subaccount=profile.subaccount, actor=actor, action=AuditEntry.Action.CARD_SYNCED,
               before=before, after=after)
        if profile.card_payment_method_id:
            _wallet_retry_on_new_card(profile.subaccount_id)
    return profile


def _wallet_retry_on_new_card(subaccount_id: int) -> None:
    """A new card retries a failed recharge at once (wallets decides whether one is due)."""
    from wallets.tasks import wallet_card_replaced_task  # wallets imports billing's models

    transaction.on_commit(lambda: wallet_card_replaced_task.delay(subaccount_id))


def _customer_gone(*, api: AgencyStripe, customer_id: str) -> bool:
    """Stripe says the customer was deleted (e.g. in the agency's dashboard) or no longer exists."""
    try:
        return _deleted(api.customer_retrieve(customer_id))
    except stripe.InvalidRequestError as error:
        if error.code != "resource_missing":
            raise
        return True


def _customer_ensure(*, profile: BillingProfile, api: AgencyStripe) -> str:
    key = _key("customer", profile.pk, api.account_id)
    if profile.stripe_customer_id and profile.stripe_account_id == api.account_id:
        if not _customer_gone(api=api, customer_id=profile.stripe_customer_id):
            return profile.stripe_customer_id
        # Forget it and make a new one. The new key still carries our row id, plus the forgotten customer's
        # id: unique for each customer we had to replace, so it never replays the deleted one's creation.
        forgotten = profile.stripe_customer_id
        audit_record(subaccount=profile.subaccount, actor="Stripe", action=AuditEntry.Action.CUSTOMER_FORGOTTEN,
                     before={"stripe_customer_id": forgotten, **_card_state(profile)},
                     after={"stripe_customer_id": ""})
        key = _key("customer", profile.pk, api.account_id, "replacing", forgotten)
    subaccount = profile.subaccount
    customer = api.customer_create(
        name=subaccount.name, email=subaccount.contact_email,
        metadata={"rebill_schema": current_schema(), "rebill_subaccount": str(subaccount.pk)},
        idempotency_key=key,
    )
    profile.stripe_account_id = api.account_id
    profile.stripe_customer_id = customer.id
    for name in CARD_FIELDS:
        setattr(profile, name, None if name.startswith("card_exp") else "")
    profile.save()
    return customer.id


def setup_intent_card_confirm(*, api: StripeCalls, setup_intent_id: str, customer_id: str,
                              previous_payment_method_id: str, key: Callable[..., str]) -> str | None:
    """The card a SetupIntent saved, from what Stripe says (never the browser): attached to the customer, made its
    default, the card it replaces detached. Returns its payment method id, or None when the SetupIntent was
    canceled; raises CardNotConfirmed. `key(what, *ids)` makes each write's idempotency key from our setup row.
    Company Billing (the agency's account) and Settings → Billing (the platform's) both confirm cards here."""
    setup_intent = api.setup_intent_retrieve(setup_intent_id)
    if setup_intent.status == "canceled":
        return None
    if setup_intent.status != "succeeded":
        raise CardNotConfirmed("Stripe has not confirmed this card yet. Please try again.")
    if _id_of(setup_intent.customer) != customer_id or not customer_id:
        raise CardNotConfirmed("This card setup does not belong to this Stripe customer.")
    payment_method = api.payment_method_retrieve(str(_id_of(setup_intent.payment_method) or ""))
    if payment_method.customer is None:
        api.payment_method_attach(payment_method.id, customer_id=customer_id, idempotency_key=key("attach"))
    elif _id_of(payment_method.customer) != customer_id:
        raise CardNotConfirmed("This card belongs to another customer.")
    api.customer_set_default_payment_method(customer_id, payment_method.id, idempotency_key=key("default_card"))
    if previous_payment_method_id and previous_payment_method_id != payment_method.id:
        try:
            api.payment_method_detach(previous_payment_method_id,
                                      idempotency_key=key("detach_replaced", previous_payment_method_id))
        except stripe.InvalidRequestError as error:  # already gone at Stripe: nothing to detach
            logger.info("Replaced card %s not detached: %s", previous_payment_method_id, error)
    return str(payment_method.id)


def _id_of(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return getattr(value, "id", None)


# Adding or replacing a card (Company Billing) ---------------------------------------------------------------------
def card_setup_start(*, subaccount: SubAccount, by: User) -> CardSetup:
    """A SetupIntent (off_session) on the agency's account for the client's customer; Stripe.js confirms it."""
    _require_account_admin(subaccount=subaccount, user=by)
    api = _current_stripe()
    with transaction.atomic():
        # The customer is committed on its own, so a retry after a later failure reuses it (same key).
        profile = _profile_locked(subaccount)
        customer_id = _customer_ensure(profile=profile, api=api)
    with transaction.atomic():
        setup = CardSetup.objects.create(subaccount=subaccount, started_by=by, stripe_account_id=api.account_id)
        setup_intent = api.setup_intent_create(
            customer_id=customer_id,
            metadata={"rebill_schema": current_schema(), "rebill_subaccount": str(subaccount.pk),
                      "rebill_card_setup": str(setup.pk)},
            idempotency_key=_key("setup_intent", setup.pk),
        )
        setup.setup_intent_id = setup_intent.id
        setup.save(update_fields=["setup_intent_id"])
    return setup


@transaction.atomic
def card_setup_complete(*, setup: CardSetup, actor: str) -> CardSetup:
    """Finish a card setup from what Stripe says (never from what the browser says): the confirmed card
    becomes the customer's default and the card on file; a replaced card is detached. Safe to run twice,
    and from the browser and the webhook at once (both lock the setup)."""
    setup = CardSetup.objects.select_for_update().select_related("subaccount").get(pk=setup.pk)
    if setup.status == CardSetup.Status.SUCCEEDED:
        return setup
    profile = _profile_locked(setup.subaccount)
    try:
        api = _current_stripe_for(account_id=setup.stripe_account_id, what="card setup")
    except ValidationError as error:
        raise CardNotConfirmed(error.messages[0]) from None
    if profile.stripe_account_id != api.account_id:
        raise CardNotConfirmed("This card setup does not belong to this sub-account's Stripe customer.")
    before = _card_state(profile)
    payment_method_id = setup_intent_card_confirm(
        api=api, setup_intent_id=setup.setup_intent_id, customer_id=profile.stripe_customer_id,
        previous_payment_method_id=profile.card_payment_method_id,
        key=lambda what, *more: _key(what, setup.pk, *more))
    if payment_method_id is None:
        setup.status = CardSetup.Status.FAILED
        setup.save(update_fields=["status"])
        return setup
    setup.status = CardSetup.Status.SUCCEEDED
    setup.completed_at = timezone.now()
    setup.save(update_fields=["status", "completed_at"])
    profile = billing_card_sync(profile=profile, api=api, actor=actor)
    audit_record(subaccount=setup.subaccount, actor=actor, action=AuditEntry.Action.CARD_SET, before=before,
           after=_card_state(profile))
    _payment_links_complete(setup=setup, profile=profile, actor=actor)
    return setup


@transaction.atomic
def card_remove(*, subaccount: SubAccount, by: User) -> BillingProfile:
    _require_account_admin(subaccount=subaccount, user=by)
    profile = _profile_locked(subaccount)
    if not profile.has_card:
        raise ValidationError("There is no card on file.")
    api = _current_stripe_for(account_id=profile.stripe_account_id, what="card")
    removing = profile.card_payment_method_id
    others = [card for card in api.customer_cards(profile.stripe_customer_id) if card.id != removing]
    if rebilling_is_switched_on(subaccount=subaccount) and not others:
        raise ValidationError("The last card cannot be removed while phone rebilling is on. Add another card, "
                              "or ask your agency to switch rebilling off first.")
    before = _card_state(profile)
    api.payment_method_detach(removing, idempotency_key=_key("detach", profile.pk, removing))
    if others:
        api.customer_set_default_payment_method(profile.stripe_customer_id, others[0].id,
                                                idempotency_key=_key("default_after_detach", profile.pk, removing))
    profile = billing_card_sync(profile=profile, api=api, actor=by.email)
    audit_record(subaccount=subaccount, actor=by.email, action=AuditEntry.Action.CARD_REMOVED, before=before,
           after=_card_state(profile))
    return profile


# Asking the client for a card (Manage Client) ---------------------------------------------------------------------
def _require_agency_admin_and_allowed(*, subaccount: SubAccount, by: User) -> None:
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins ask clients for a card.")
    refusal = payment_request_refusal(subaccount=subaccount)
    if refusal:
        raise ValidationError(refusal)


def payment_link_token(*, request: PaymentRequest) -> str:
    return signing.dumps({"request": request.pk, "subaccount": request.subaccount_id}, salt=payment_link_salt())


@transaction.atomic
def payment_link_send(*, subaccount: SubAccount, by: User, link_url: Callable[[str], str]) -> PaymentRequest:
    """Email the account admins a signed, expiring link to Company Billing, spent once a card is saved through it.

    The email is part of the change: it is sent last, inside the transaction, so an email that cannot be sent
    leaves nothing behind (no request, no audit row) and the agency admin is told to try again.
    """
    _require_agency_admin_and_allowed(subaccount=subaccount, by=by)
    recipients = list(subaccount_account_admins(subaccount=subaccount).values_list("email", flat=True))
    request = PaymentRequest.objects.create(
        subaccount=subaccount, kind=PaymentRequest.Kind.LINK_EMAILED, status=PaymentRequest.Status.SENT,
        requested_by=by, recipients=", ".join(recipients),
        expires_at=timezone.now() + settings.PAYMENT_LINK_MAX_AGE,
    )
    url = link_url(payment_link_token(request=request))
    agency_name = current_agency().name
    days = settings.PAYMENT_LINK_MAX_AGE.days
    audit_record(subaccount=subaccount, actor=by.email, action=AuditEntry.Action.PAYMENT_LINK_SENT,
           after={"payment_request": request.pk, "recipients": recipients})
    error = email_send(
        subject=f"{agency_name}: add a card for {subaccount.name}",
        body=(
            f"{agency_name} asks you to add a payment card for {subaccount.name}.\n\n"
            f"Open Company Billing here (you may be asked to sign in). The link works until a card is saved "
            f"through it, for up to {days} days:\n{url}\n"
        ),
        to=recipients,
    )
    if error:
        raise ValidationError(f"{error} No payment link was sent; please try again.")
    return request


@transaction.atomic
def payment_link_open(*, token: str, by: User) -> PaymentRequest:
    """The account admin follows the link to Company Billing. Opening does not spend it (a card saved through it
    does, see `_payment_links_complete`), so it can be opened again until then."""
    request = payment_link_request(token=token)
    request = PaymentRequest.objects.select_for_update().select_related("subaccount").get(pk=request.pk)
    refusal = payment_link_refusal_for(user=by, request=request)
    if refusal:
        raise ValidationError(refusal)
    if request.status == PaymentRequest.Status.SENT:
        request.status = PaymentRequest.Status.OPENED
        request.used_by = by
        request.save(update_fields=["used_by", "status"])
    return request


def _payment_links_complete(*, setup: CardSetup, profile: BillingProfile, actor: str) -> None:
    """A card saved on Company Billing spends the client's open payment links: what they asked for is done."""
    now = timezone.now()
    open_links = PaymentRequest.objects.select_for_update().filter(
        subaccount=setup.subaccount, kind=PaymentRequest.Kind.LINK_EMAILED,
        status__in=[PaymentRequest.Status.SENT, PaymentRequest.Status.OPENED], expires_at__gt=now,
    )
    for request in open_links:
        request.status = PaymentRequest.Status.COMPLETED
        request.used_at = now
        request.used_by = setup.started_by
        request.save(update_fields=["status", "used_at", "used_by"])
        audit_record(subaccount=setup.subaccount, actor=actor, action=AuditEntry.Action.PAYMENT_LINK_USED,
                     after={"payment_request": request.pk, "card_last4": profile.card_last4})


@transaction.atomic
def stripe_customer_link(*, subaccount: SubAccount, customer_id: str, by: User) -> PaymentRequest:
    """Link a customer that already exists on the agency's account; its default card becomes the card on file."""
    _require_agency_admin_and_allowed(subaccount=subaccount, by=by)
    api = _current_stripe()
    try:
        customer = api.customer_retrieve(customer_id.strip())
    except stripe.InvalidRequestError:
        raise ValidationError("No such customer on your Stripe account.") from None
    if _deleted(customer):
        raise ValidationError("That Stripe customer has been deleted.")
    cards = api.customer_cards(customer.id)
    if not cards:
        raise ValidationError(f"{getattr(customer, 'name', None) or customer.id} has no saved card in Stripe. "
                              "Send a payment link instead.")
    clash = (BillingProfile.objects.filter(stripe_account_id=api.account_id, stripe_customer_id=customer.id)
             .exclude(subaccount=subaccount).select_related("subaccount").first())
    if clash is not None:
        raise ValidationError(f"That Stripe customer is already linked to {clash.subaccount.name}.")
    profile = _profile_locked(subaccount)
    before = {"stripe_customer_id": profile.stripe_customer_id, **_card_state(profile)}
    request = PaymentRequest.objects.create(
        subaccount=subaccount, kind=PaymentRequest.Kind.CUSTOMER_LINKED, status=PaymentRequest.Status.COMPLETED,
        requested_by=by, stripe_customer_id=customer.id,
    )
    default_id = _default_payment_method_id(customer)
    if default_id not in {card.id for card in cards}:
        api.customer_set_default_payment_method(customer.id, cards[0].id,
                                                idempotency_key=_key("default_card_linked", request.pk))
    profile.stripe_account_id = api.account_id
    profile.stripe_customer_id = customer.id
    profile.save(update_fields=["stripe_account_id", "stripe_customer_id"])
    profile = billing_card_sync(profile=profile, api=api, actor=by.email)
    audit_record(subaccount=subaccount, actor=by.email, action=AuditEntry.Action.CUSTOMER_LINKED, before=before,
           after={"stripe_customer_id": customer.id, **_card_state(profile)})
    return request
