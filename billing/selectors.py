"""Reads about sub-accounts' billing, scoped to what the caller may see."""

from __future__ import annotations

from dataclasses import dataclass, field

import stripe
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from billing.models import BillingProfile, CardSetup, PaymentRequest
from people.models import User
from rebill.tenancy import current_schema
from stripe_connect.selectors import NotConnected, agency_stripe, connected_account_for_agency, current_agency
from subaccounts.models import Membership, SubAccount
from subaccounts.selectors import one_to_one_row, subaccount_account_admins


def company_billing_membership(*, user: User, subaccount_id: int) -> Membership:
    """The caller's account-admin membership of that sub-account, or 404 (agency staff included)."""
    membership = (
        Membership.objects.select_related("subaccount")
        .filter(user=user, user__role=User.Role.CLIENT, subaccount_id=subaccount_id,
                role=Membership.Role.ACCOUNT_ADMIN)
        .first()
    )
    if membership is None:
        raise Http404("No such sub-account")
    return membership


def is_account_admin(*, user: User, subaccount: SubAccount) -> bool:
    """Only a client's explicit account-admin membership counts: agency staff never are (DESIGN §1, §13)."""
    return user.role == User.Role.CLIENT and Membership.objects.filter(
        subaccount=subaccount, user=user, role=Membership.Role.ACCOUNT_ADMIN).exists()


def payment_link_refusal_for(*, user: User, request: PaymentRequest) -> str | None:
    if not is_account_admin(user=user, subaccount=request.subaccount):
        return (f"This link is for the account admins of {request.subaccount.name}. "
                "Sign in with the account it was sent to.")
    return None


def billing_profile(*, subaccount: SubAccount) -> BillingProfile | None:
    profile: BillingProfile | None = one_to_one_row(subaccount=subaccount, related_name="billing_profile")
    return profile


def card_setup_for_account_admin(*, membership: Membership, setup_id: int) -> CardSetup:
    setup = CardSetup.objects.filter(subaccount=membership.subaccount, pk=setup_id).first()
    if setup is None:
        raise Http404("No such card setup")
    return setup


def card_setup_refusal_for_client(*, subaccount: SubAccount) -> str | None:
    """Why the client cannot add a card yet, in words for the client (Settings → Stripe is not their page)."""
    agency = current_agency()
    if connected_account_for_agency(agency=agency) is None:
        return (f"{agency.name} has not finished setting up card payments yet, so a card cannot be added here "
                "for now. Please ask them to complete their setup; nothing is needed from you until then.")
    return None


def card_setup_client_secret(*, setup: CardSetup) -> str:
    """The SetupIntent's client secret for Stripe.js, read through the agency's *current* connection; a setup
    made on another account is refused (ValidationError)."""
    try:
        api = agency_stripe(agency=current_agency())
    except NotConnected as error:
        raise ValidationError(str(error)) from None
    if api.account_id != setup.stripe_account_id:
        raise ValidationError("This card setup was started on a Stripe account your agency is no longer "
                              "connected to. Start again.")
    return str(api.setup_intent_retrieve(setup.setup_intent_id).client_secret)


def payment_request_refusal(*, subaccount: SubAccount, account_admin_emails: list[str] | None = None) -> str | None:
    """Why the agency cannot ask this client for a card right now, or None. A caller that has just read the
    account admins' emails passes them, so they are not looked up again."""
    if connected_account_for_agency(agency=current_agency()) is None:
        return "Connect your agency's Stripe account first (Settings → Stripe)."
    if not (account_admin_emails if account_admin_emails is not None
            else subaccount_account_admins(subaccount=subaccount).exists()):
        return "Add an account admin to this sub-account first: only the client's account admins can add a card."
    return None


@dataclass(frozen=True)
class ManageClientBilling:
    subaccount: SubAccount
    profile: BillingProfile | None
    refusal: str | None
    account_admin_emails: list[str]
    recent_requests: list[PaymentRequest] = field(default_factory=list)


def manage_client_billing(*, subaccount: SubAccount) -> ManageClientBilling:
    """Everything the billing section of Manage Client shows (card status read-only, payment requests)."""
    emails = list(subaccount_account_admins(subaccount=subaccount).values_list("email", flat=True))
    return ManageClientBilling(
        subaccount=subaccount,
        profile=billing_profile(subaccount=subaccount),
        refusal=payment_request_refusal(subaccount=subaccount, account_admin_emails=emails),
        account_admin_emails=emails,
        recent_requests=list(PaymentRequest.objects.filter(subaccount=subaccount).select_related("requested_by")[:5]),
    )


# Payment links ----------------------------------------------------------------------------------------------------
def payment_link_salt() -> str:
    # Single purpose and bound to the agency: a link signed here means nothing elsewhere.
    return f"billing.payment-link:{current_schema()}"


def payment_link_request(*, token: str) -> PaymentRequest:
    """The payment request a link names: spent (COMPLETED: a card was saved through it), or still open and
    unexpired; ValidationError with a clear message otherwise."""
    try:
        payload = signing.loads(token, salt=payment_link_salt(), max_age=settings.PAYMENT_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise ValidationError("This payment link has expired. Ask your agency to send a new one.") from None
    except signing.BadSignature:
        raise ValidationError("This payment link is not valid.") from None
    request = (
        PaymentRequest.objects.select_related("subaccount")
        .filter(pk=payload.get("request"), subaccount_id=payload.get("subaccount"),
                kind=PaymentRequest.Kind.LINK_EMAILED)
        .first()
    )
    if request is None:
        raise ValidationError("This payment link is not valid.")
    if request.status == PaymentRequest.Status.COMPLETED:
        return request
    if request.expires_at is not None and request.expires_at <= timezone.now():
        raise ValidationError("This payment link has expired. Ask your agency to send a new one.")
    return request


def payment_link_is_spent(*, request: PaymentRequest) -> bool:
    """A link is spent once a card has been saved through it; opening it before that changes nothing."""
    return request.status == PaymentRequest.Status.COMPLETED


# Existing Stripe customers ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomerMatch:
    id: str
    name: str
    email: str


def stripe_customers_find(*, query: str) -> list[CustomerMatch]:
    """The agency's Stripe customers matching a customer id, an email, or (part of) a name."""
    query = query.strip()
    if not query:
        return []
    try:
        api = agency_stripe(agency=current_agency())
    except NotConnected:
        return []
    if query.startswith("cus_"):
        try:
            found = [api.customer_retrieve(query)]
        except stripe.InvalidRequestError:
            found = []
    elif "@" in query:
        found = api.customers_with_email(query)
    else:
        found = api.customers_named(query)
    return [CustomerMatch(id=c.id, name=getattr(c, "name", None) or "", email=getattr(c, "email", None) or "")
            for c in found if not getattr(c, "deleted", False)]
