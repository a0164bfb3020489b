"""billing/selectors.py, read directly: payment links, refusals and customer search say exactly what they mean."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import BillingProfile, CardSetup, PaymentRequest
from billing.selectors import (
    CustomerMatch,
    card_setup_client_secret,
    card_setup_for_account_admin,
    card_setup_refusal_for_client,
    company_billing_membership,
    is_account_admin,
    manage_client_billing,
    payment_link_is_spent,
    payment_link_refusal_for,
    payment_link_request,
    payment_link_salt,
    payment_request_refusal,
    stripe_customers_find,
)
from subaccounts.models import Membership
from tests.billing.fixtures import ACCT_A, ACCT_B, on

NOT_VALID = "This payment link is not valid."
EXPIRED = "This payment link has expired. Ask your agency to send a new one."


def _request(subaccount, *, kind=PaymentRequest.Kind.LINK_EMAILED, **fields) -> PaymentRequest:
    fields.setdefault("expires_at", timezone.now() + timedelta(days=30))
    fields.setdefault("status", PaymentRequest.Status.SENT)
    return PaymentRequest.objects.create(subaccount=subaccount, kind=kind, **fields)


def _token(request: PaymentRequest, **payload) -> str:
    return signing.dumps({"request": request.pk, "subaccount": request.subaccount_id, **payload},
                         salt=payment_link_salt())


def _refused(token: str) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        payment_link_request(token=token)
    return refused.value.messages


def test_a_good_link_names_its_request_with_its_subaccount(world, db):
    with tenant_context(world.a.agency):
        request = _request(world.a.subaccounts[0])
        found = payment_link_request(token=_token(request))
        assert found == request
        assert found.subaccount.name == world.a.subaccounts[0].name
        assert payment_link_salt() == "billing.payment-link:alpha"
    with tenant_context(world.b.agency):
        assert payment_link_salt() == "billing.payment-link:bravo"


def test_a_link_naming_another_request_or_subaccount_or_kind_is_not_valid(world, db):
    with tenant_context(world.a.agency):
        first, second = world.a.subaccounts
        request = _request(first)
        _request(second)
        linked = _request(first, kind=PaymentRequest.Kind.CUSTOMER_LINKED)

        assert _refused(_token(request, subaccount=second.pk)) == [NOT_VALID]
        assert _refused(signing.dumps({"subaccount": first.pk}, salt=payment_link_salt())) == [NOT_VALID]
        assert _refused(_token(linked)) == [NOT_VALID]
        assert _refused("garbage") == [NOT_VALID]
        assert _refused(signing.dumps({"request": request.pk, "subaccount": first.pk}, salt="other")) == [NOT_VALID]


def test_a_link_opened_before_still_works_and_one_a_card_was_saved_through_is_spent(world, db):
    with tenant_context(world.a.agency):
        opened = _request(world.a.subaccounts[0], used_at=timezone.now())
        assert payment_link_request(token=_token(opened)) == opened
        assert not payment_link_is_spent(request=opened)
        # spent even once its row has expired: the page then says the card is saved
        spent = _request(world.a.subaccounts[0], status=PaymentRequest.Status.COMPLETED,
                         expires_at=timezone.now() - timedelta(days=1))
        assert payment_link_request(token=_token(spent)) == spent
        assert payment_link_is_spent(request=spent)


def test_a_link_expires_by_its_signature_even_when_its_row_has_not(world, db):
    with tenant_context(world.a.agency):
        request = _request(world.a.subaccounts[0], expires_at=timezone.now() + timedelta(days=365))
        token = _token(request)
        with time_machine.travel(timezone.now() + timedelta(days=8)):
            assert _refused(token) == [EXPIRED]
        with time_machine.travel(timezone.now() + timedelta(days=6)):
            assert payment_link_request(token=token) == request


def test_a_link_expires_by_its_row_too(world, db):
    with tenant_context(world.a.agency):
        request = _request(world.a.subaccounts[0], expires_at=timezone.now() - timedelta(seconds=1))
        assert _refused(_token(request)) == [EXPIRED]
        never = _request(world.a.subaccounts[0], expires_at=None)
        assert payment_link_request(token=_token(never)) == never


def test_a_link_has_expired_at_the_very_moment_its_row_says(world, db):
    with tenant_context(world.a.agency):
        expires_at = timezone.now() + timedelta(days=1)
        request = _request(world.a.subaccounts[0], expires_at=expires_at)
        token = _token(request)
        with time_machine.travel(expires_at - timedelta(microseconds=1), tick=False):
            assert payment_link_request(token=token) == request
        with time_machine.travel(expires_at, tick=False):
            assert _refused(token) == [EXPIRED]


def test_a_link_is_read_with_its_subaccount_in_one_query(world, db):
    with tenant_context(world.a.agency):
        request = _request(world.a.subaccounts[0])
        token = _token(request)
        with CaptureQueriesContext(connection) as queries:
            assert payment_link_request(token=token).subaccount.name == world.a.subaccounts[0].name
        assert len([q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]) == 1


def test_the_refusals_name_the_subaccount_and_the_next_step(world, db):
    with tenant_context(world.a.agency):
        request = _request(world.a.subaccounts[0])
        assert payment_link_refusal_for(user=world.a.account_admins[1], request=request) == (
            f"This link is for the account admins of {world.a.subaccounts[0].name}. "
            "Sign in with the account it was sent to.")
        assert payment_link_refusal_for(user=world.a.account_admins[0], request=request) is None
        assert card_setup_refusal_for_client(subaccount=world.a.subaccounts[0]) == (
            "Alpha Agency has not finished setting up card payments yet, so a card cannot be added here for now. "
            "Please ask them to complete their setup; nothing is needed from you until then.")
        assert payment_request_refusal(subaccount=world.a.subaccounts[0]) == (
            "Connect your agency's Stripe account first (Settings → Stripe).")


def test_refusals_once_connected(world, connected):
    with tenant_context(world.a.agency):
        first = world.a.subaccounts[0]
        assert card_setup_refusal_for_client(subaccount=first) is None
        assert payment_request_refusal(subaccount=first) is None
        Membership.objects.filter(subaccount=first, role=Membership.Role.ACCOUNT_ADMIN).update(
            role=Membership.Role.ACCOUNT_USER)
        assert payment_request_refusal(subaccount=first) == (
            "Add an account admin to this sub-account first: only the client's account admins can add a card.")
        assert not is_account_admin(user=world.a.account_admins[0], subaccount=first)


def test_company_billing_is_for_that_subaccounts_account_admins_only(world, db):
    with tenant_context(world.a.agency):
        first, second = world.a.subaccounts
        membership = company_billing_membership(user=world.a.account_admins[0], subaccount_id=first.pk)
        assert (membership.subaccount, membership.user) == (first, world.a.account_admins[0])
        assert is_account_admin(user=world.a.account_admins[0], subaccount=first)
        for user, subaccount in ((world.a.account_admins[0], second), (world.a.account_users[0], first),
                                 (world.a.admin, first)):
            with pytest.raises(Http404):
                company_billing_membership(user=user, subaccount_id=subaccount.pk)
            assert not is_account_admin(user=user, subaccount=subaccount)

        setup = CardSetup.objects.create(subaccount=first, started_by=world.a.account_admins[0],
                                         stripe_account_id=ACCT_A)
        assert card_setup_for_account_admin(membership=membership, setup_id=setup.pk) == setup
        later = CardSetup.objects.create(subaccount=first, started_by=world.a.account_admins[0],
                                         stripe_account_id=ACCT_A)
        assert card_setup_for_account_admin(membership=membership, setup_id=later.pk) == later
        assert card_setup_for_account_admin(membership=membership, setup_id=setup.pk) == setup
        other = company_billing_membership(user=world.a.account_admins[1], subaccount_id=second.pk)
        with pytest.raises(Http404):
            card_setup_for_account_admin(membership=other, setup_id=setup.pk)


def test_a_card_setups_secret_is_read_only_through_the_agencys_current_connection(world, db):
    with tenant_context(world.a.agency):
        setup = CardSetup.objects.create(subaccount=world.a.subaccounts[0], started_by=world.a.account_admins[0],
                                         stripe_account_id=ACCT_A, setup_intent_id="seti_x")
        with pytest.raises(ValidationError) as refused:
            card_setup_client_secret(setup=setup)
        assert refused.value.messages == ["Connect your agency's Stripe account first (Settings → Stripe)."]


def test_a_card_setup_made_on_another_account_gives_no_secret(world, connected):
    with tenant_context(world.a.agency):
        setup = CardSetup.objects.create(subaccount=world.a.subaccounts[0], started_by=world.a.account_admins[0],
                                         stripe_account_id=ACCT_B, setup_intent_id="seti_x")
        with pytest.raises(ValidationError) as refused:
            card_setup_client_secret(setup=setup)
        assert refused.value.messages == ["This card setup was started on a Stripe account your agency is no longer "
                                          "connected to. Start again."]


def test_company_billing_reads_the_membership_with_its_subaccount_in_one_query(world, db):
    with tenant_context(world.a.agency):
        first = world.a.subaccounts[0]
        with CaptureQueriesContext(connection) as queries:
            membership = company_billing_membership(user=world.a.account_admins[0], subaccount_id=first.pk)
            assert membership.subaccount.name == first.name
        assert len([q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]) == 1


def test_manage_client_billing_gathers_the_section(world, connected):
    with tenant_context(world.a.agency):
        first, second = world.a.subaccounts
        profile = BillingProfile.objects.create(subaccount=first, stripe_account_id=ACCT_A)
        requests = [_request(first) for _ in range(6)]
        _request(second)
        section = manage_client_billing(subaccount=first)
        assert (section.subaccount, section.profile, section.refusal) == (first, profile, None)
        assert section.account_admin_emails == [world.a.account_admins[0].email]
        assert section.recent_requests == list(reversed(requests))[:5]
        assert manage_client_billing(subaccount=second).profile is None


def test_manage_client_billing_reads_who_asked_with_the_requests(world, connected):
    with tenant_context(world.a.agency):
        first = world.a.subaccounts[0]
        for _ in range(2):
            _request(first, requested_by=world.a.admin)
        section = manage_client_billing(subaccount=first)
        with CaptureQueriesContext(connection) as queries:
            assert [r.requested_by.email for r in section.recent_requests] == [world.a.admin.email] * 2
        assert queries.captured_queries == []



def test_the_refusal_trusts_the_admins_it_is_given_and_manage_client_reads_them_once(world, connected):
    def membership_reads(queries: CaptureQueriesContext) -> int:
        return len([q for q in queries.captured_queries if "subaccounts_membership" in q["sql"]])

    with tenant_context(world.a.agency):
        first = world.a.subaccounts[0]  # it has an account admin; the caller says it has none
        with CaptureQueriesContext(connection) as queries:
            assert payment_request_refusal(subaccount=first, account_admin_emails=[]) == (
                "Add an account admin to this sub-account first: only the client's account admins can add a card.")
        assert membership_reads(queries) == 0
        with CaptureQueriesContext(connection) as queries:
            assert manage_client_billing(subaccount=first).refusal is None
        assert membership_reads(queries) == 1

# Existing Stripe customers ----------------------------------------------------------------------------------------
def test_customer_search_by_email_name_and_id(world, connected, raw_stripe):
    acme = raw_stripe.v1.customers.create(params={"name": "Acme Dental", "email": "pay@acme.test"}, options=on(ACCT_A))
    raw_stripe.v1.customers.create(params={"name": "Zeta Dental", "email": "pay@zeta.test"}, options=on(ACCT_A))
    bare = raw_stripe.v1.customers.create(params={}, options=on(ACCT_A))
    raw_stripe.v1.customers.create(params={"name": "Acme Dental", "email": "pay@acme.test"}, options=on(ACCT_B))
    with tenant_context(world.a.agency):
        assert stripe_customers_find(query="  pay@acme.test ") == [CustomerMatch(acme.id, "Acme Dental",
                                                                                 "pay@acme.test")]
        assert stripe_customers_find(query="acme") == [CustomerMatch(acme.id, "Acme Dental", "pay@acme.test")]
        assert stripe_customers_find(query=acme.id) == [CustomerMatch(acme.id, "Acme Dental", "pay@acme.test")]
        assert stripe_customers_find(query=bare.id) == [CustomerMatch(bare.id, "", "")]
        assert stripe_customers_find(query="cus_doesnotexist") == []
        assert stripe_customers_find(query="   ") == []


def test_a_deleted_customer_is_not_found(world, connected, raw_stripe):
    gone = raw_stripe.v1.customers.create(params={"name": "Gone Ltd", "email": "gone@gone.test"}, options=on(ACCT_A))
    raw_stripe.v1.customers.delete(gone.id, options=on(ACCT_A))
    with tenant_context(world.a.agency):
        assert stripe_customers_find(query=gone.id) == []
        assert stripe_customers_find(query="gone@gone.test") == []


def test_customer_search_without_stripe_finds_nothing(world, db):
    with tenant_context(world.a.agency):
        assert stripe_customers_find(query="acme") == []
