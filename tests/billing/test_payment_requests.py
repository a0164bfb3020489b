"""Manage Client asks the client for a card: a payment link emailed, or an existing Stripe customer linked."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import BillingProfile, PaymentRequest
from devservices.localstripe_server import clear_recorded_requests
from stripe_connect.models import ConnectedAccount
from subaccounts.models import AuditEntry, Membership, SubAccount
from tests.billing.fixtures import ACCT_A, ACCT_B, api_requests, customer_with_card
from tests.billing.helpers import add_card_on_company_billing, profile_of
from tests.conftest import client_for


def _send_link(world_a, subaccount, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client_for(world_a, world_a.admin).post(
            f"/agency/subaccounts/{subaccount.pk}/billing/payment-link/", follow=True)


def _link_in(message) -> str:
    return re.search(r"http://\S+/billing/payment-link/\S+/", message.body).group(0).split("alpha.localhost", 1)[1]


def _requests(world_a):
    with tenant_context(world_a.agency):
        return list(PaymentRequest.objects.all())


def test_the_agency_admin_emails_the_account_admins_a_link_to_company_billing(
        world, connected, django_capture_on_commit_callbacks):
    subaccount = world.a.subaccounts[0]

    response = _send_link(world.a, subaccount, django_capture_on_commit_callbacks)

    assert f"Payment link sent to {world.a.account_admins[0].email}" in response.content.decode()
    [message] = mail.outbox
    assert message.to == [world.a.account_admins[0].email]  # not the account user, not the other client's admin
    assert subaccount.name in message.subject
    # the account admin follows it: sign in first, then spend it, then land on Company Billing
    link = _link_in(message)
    anonymous = client_for(world.a)
    assert anonymous.get(link)["Location"].startswith("/login/?next=")
    owner = client_for(world.a, world.a.account_admins[0])
    assert "Continue to Company Billing" in owner.get(link).content.decode()
    landed = owner.post(link)
    assert landed["Location"] == f"/accounts/{subaccount.pk}/billing/"
    [request] = _requests(world.a)
    assert (request.status, request.used_by) == (PaymentRequest.Status.OPENED, world.a.account_admins[0])
    # B's agency got nothing
    with tenant_context(world.b.agency):
        assert not PaymentRequest.objects.exists()


def test_a_link_works_until_a_card_is_saved_through_it(
        world, connected, localstripe, django_capture_on_commit_callbacks):
    # given a payment link, and the page saying what "once" means
    subaccount = world.a.subaccounts[0]
    _send_link(world.a, subaccount, django_capture_on_commit_callbacks)
    assert "works until a card is saved through it" in mail.outbox[0].body
    link = _link_in(mail.outbox[0])
    owner = client_for(world.a, world.a.account_admins[0])
    page = owner.get(link).content.decode()
    assert "This link works until a card is saved through it" in page and "open it again" in page

    # when the account admin opens it twice before adding a card, then it works both times
    for _ in range(2):
        assert owner.get(link).status_code == 200
        assert owner.post(link)["Location"] == f"/accounts/{subaccount.pk}/billing/"
    [request] = _requests(world.a)
    assert request.status == PaymentRequest.Status.OPENED and request.used_at is None

    # when a card is saved (through it: on Company Billing, while the link is open)
    saved = add_card_on_company_billing(owner, subaccount, localstripe)
    assert "Your card is saved." in saved.content.decode()

    # then the link is spent, recorded and audited
    [request] = _requests(world.a)
    assert request.status == PaymentRequest.Status.COMPLETED and request.used_at is not None
    assert request.used_by == world.a.account_admins[0]
    with tenant_context(world.a.agency):
        used = AuditEntry.objects.get(action=AuditEntry.Action.PAYMENT_LINK_USED)
    assert used.subaccount_id == subaccount.pk and used.after == {"payment_request": request.pk, "card_last4": "4242"}
    # and opening it again says the card is saved and points to Company Billing, changing nothing
    for client in (owner, client_for(world.a)):
        for response in (client.get(link), client.post(link)):
            html = response.content.decode()
            assert response.status_code == 200
            assert "The card is saved" in html and "the link is used up" in html
            assert f'href="/accounts/{subaccount.pk}/billing/"' in html
    [after] = _requests(world.a)
    assert (after.status, after.used_at) == (request.status, request.used_at)
    # and another agency's requests were untouched
    with tenant_context(world.b.agency):
        assert not PaymentRequest.objects.exists()


def test_a_link_for_a_client_that_already_has_a_card_says_so_and_still_lets_them_replace_it(
        world, connected, localstripe, django_capture_on_commit_callbacks):
    # given client 1 already has a card
    subaccount = world.a.subaccounts[0]
    owner = client_for(world.a, world.a.account_admins[0])
    add_card_on_company_billing(owner, subaccount, localstripe)
    _send_link(world.a, subaccount, django_capture_on_commit_callbacks)
    link = _link_in(mail.outbox[0])

    # when its account admin opens the link
    html = owner.get(link).content.decode()

    # then it says a card is on file, which one, and offers to replace it
    assert "already has a card" in html and "ending in <strong>4242</strong>" in html
    assert "Replace the card on Company Billing" in html
    assert owner.post(link)["Location"] == f"/accounts/{subaccount.pk}/billing/"
    replaced = add_card_on_company_billing(owner, subaccount, localstripe, number="5555555555554444")
    assert "4444" in replaced.content.decode()
    [request] = _requests(world.a)
    assert request.status == PaymentRequest.Status.COMPLETED


def test_a_link_that_cannot_be_emailed_leaves_nothing_behind(world, connected, settings,
                                                              django_capture_on_commit_callbacks):
    # given the mail server refuses everything
    settings.EMAIL_BACKEND = "tests.failing_email.EmailBackend"
    subaccount = world.a.subaccounts[0]

    # when the agency admin sends a payment link
    response = _send_link(world.a, subaccount, django_capture_on_commit_callbacks)

    # then the page says so (no 500), and no request nor audit row was saved
    assert response.status_code == 200
    assert "The email could not be sent. No payment link was sent; please try again." in response.content.decode()
    assert _requests(world.a) == []
    with tenant_context(world.a.agency):
        assert not AuditEntry.objects.filter(action=AuditEntry.Action.PAYMENT_LINK_SENT).exists()


def test_a_link_for_a_client_named_with_a_line_break_goes_out_with_a_one_line_subject(
        world, connected, django_capture_on_commit_callbacks):
    # given a client named before names were checked
    # (a row of its own: the session's shared `world` objects must keep their names)
    with tenant_context(world.a.agency):
        subaccount = SubAccount.objects.get(pk=world.a.subaccounts[0].pk)
        SubAccount.objects.filter(pk=subaccount.pk).update(name="Evil\nBcc: x@y.test")

    response = _send_link(world.a, subaccount, django_capture_on_commit_callbacks)

    assert response.status_code == 200 and "Payment link sent" in response.content.decode()
    [message] = mail.outbox
    assert message.subject == "Alpha Agency: add a card for Evil Bcc: x@y.test"
    assert message.message()["Bcc"] is None and message.bcc == []
    assert len(_requests(world.a)) == 1


def test_an_expired_link_shows_a_clear_page_and_changes_nothing(world, connected, django_capture_on_commit_callbacks):
    _send_link(world.a, world.a.subaccounts[0], django_capture_on_commit_callbacks)
    link = _link_in(mail.outbox[0])
    owner = client_for(world.a, world.a.account_admins[0])

    with time_machine.travel(timezone.now() + timedelta(days=8)):
        responses = [owner.get(link), owner.post(link)]

    for response in responses:
        assert response.status_code == 400
        assert "expired" in response.content.decode()
    [request] = _requests(world.a)
    assert request.used_at is None and request.status == PaymentRequest.Status.SENT


@pytest.mark.parametrize("tamper", ["flip", "other_agency", "truncate"])
def test_a_tampered_link_shows_a_clear_page_and_changes_nothing(
        world, connected, django_capture_on_commit_callbacks, tamper):
    _send_link(world.a, world.a.subaccounts[0], django_capture_on_commit_callbacks)
    link = _link_in(mail.outbox[0])
    token = link.rstrip("/").rsplit("/", 1)[1]
    if tamper == "flip":
        link = link.replace(token, token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"))
        client = client_for(world.a, world.a.account_admins[0])
    elif tamper == "other_agency":  # the same token on another agency's domain
        client = client_for(world.b, world.b.account_admins[0])
    else:
        link = link.replace(token, token[: len(token) // 2])
        client = client_for(world.a, world.a.account_admins[0])

    for response in (client.get(link), client.post(link)):
        assert response.status_code == 400
        assert "not valid" in response.content.decode()
    [request] = _requests(world.a)
    assert request.used_at is None


def test_a_link_is_only_for_that_clients_account_admins(world, connected, django_capture_on_commit_callbacks):
    _send_link(world.a, world.a.subaccounts[0], django_capture_on_commit_callbacks)
    link = _link_in(mail.outbox[0])

    for stranger in (world.a.account_admins[1], world.a.account_users[0], world.a.admin):
        client = client_for(world.a, stranger)
        for response in (client.get(link), client.post(link)):
            assert response.status_code == 400
            assert "for the account admins of" in response.content.decode()
    assert _requests(world.a)[0].used_at is None


def test_asking_for_a_card_is_refused_with_the_reason(world, db, localstripe, django_capture_on_commit_callbacks):
    subaccount = world.a.subaccounts[0]
    admin = client_for(world.a, world.a.admin)

    # no connected Stripe account
    page = admin.get(f"/agency/subaccounts/{subaccount.pk}/").content.decode()
    assert "Connect your agency&#x27;s Stripe account first" in page
    response = _send_link(world.a, subaccount, django_capture_on_commit_callbacks)
    assert "Connect your agency&#x27;s Stripe account first" in response.content.decode()
    response = admin.post(f"/agency/subaccounts/{subaccount.pk}/billing/customers/link/",
                          {"customer_id": "cus_123"}, follow=True)
    assert "Connect your agency&#x27;s Stripe account first" in response.content.decode()

    # connected, but the client has no account admin
    ConnectedAccount.objects.create(agency=world.a.agency, account_id=ACCT_A)
    with tenant_context(world.a.agency):
        Membership.objects.filter(subaccount=subaccount, role=Membership.Role.ACCOUNT_ADMIN).delete()
    page = admin.get(f"/agency/subaccounts/{subaccount.pk}/").content.decode()
    assert "Add an account admin to this sub-account first" in page
    response = _send_link(world.a, subaccount, django_capture_on_commit_callbacks)
    assert "Add an account admin to this sub-account first" in response.content.decode()

    assert mail.outbox == []
    assert _requests(world.a) == []
    assert api_requests(localstripe) == []


def test_only_agency_admins_ask_for_a_card(world, connected, django_capture_on_commit_callbacks):
    subaccount = world.a.subaccounts[0]
    for person in (world.a.agency_user, world.a.account_admins[0]):
        client = client_for(world.a, person)
        assert client.post(f"/agency/subaccounts/{subaccount.pk}/billing/payment-link/").status_code == 404
        assert client.get(f"/agency/subaccounts/{subaccount.pk}/billing/customers/?q=x").status_code == 404
    assert mail.outbox == []


# The existing-customer path ---------------------------------------------------------------------------------------
def test_an_existing_customer_is_found_by_email_name_and_id_and_linked(world, connected, raw_stripe, localstripe):
    # given a customer with a card on agency A's account, and a look-alike on agency B's
    cus, pm = customer_with_card(raw_stripe, ACCT_A, name="Acme Dental Group", email="billing@acme-dental.test",
                                 exp_month=7)
    other, _ = customer_with_card(raw_stripe, ACCT_B, name="Acme Dental Group", email="billing@acme-dental.test")
    subaccount = world.a.subaccounts[0]
    admin = client_for(world.a, world.a.admin)
    search = f"/agency/subaccounts/{subaccount.pk}/billing/customers/"
    clear_recorded_requests(localstripe)

    # when the agency admin searches by email, by (part of the) name and by id
    for query in ("billing@acme-dental.test", "dental", cus.id):
        html = admin.get(search, {"q": query}).content.decode()
        # then A's customer is found, never B's
        assert cus.id in html and "Acme Dental Group" in html, query
        assert other.id not in html
    assert "No customer on your Stripe account matches." in admin.get(search, {"q": other.id}).content.decode()

    # and when they link it, its card becomes the card on file
    response = admin.post(f"/agency/subaccounts/{subaccount.pk}/billing/customers/link/", {"customer_id": cus.id},
                          follow=True)
    html = response.content.decode()
    assert "Stripe customer linked" in html
    assert "Visa" in html and "4242" in html and "07/2034" in html
    profile = profile_of(world.a, subaccount)
    assert (profile.stripe_account_id, profile.stripe_customer_id, profile.card_payment_method_id) == (
        ACCT_A, cus.id, pm.id)
    assert raw_stripe.v1.customers.retrieve(cus.id, options={"stripe_account": ACCT_A}).invoice_settings \
        .default_payment_method == pm.id
    # and every request about this client's money carried agency A's account
    assert all(r["stripe_account"] == ACCT_A for r in api_requests(localstripe))
    with tenant_context(world.b.agency):
        assert not BillingProfile.objects.exists()


def test_another_agencys_customer_cannot_be_linked(world, connected, raw_stripe):
    other, _ = customer_with_card(raw_stripe, ACCT_B, name="Bravo's own")
    subaccount = world.a.subaccounts[0]

    response = client_for(world.a, world.a.admin).post(
        f"/agency/subaccounts/{subaccount.pk}/billing/customers/link/", {"customer_id": other.id}, follow=True)

    assert "No such customer on your Stripe account." in response.content.decode()
    assert profile_of(world.a, subaccount) is None


def test_a_customer_without_a_card_is_not_linked(world, connected, raw_stripe):
    bare = raw_stripe.v1.customers.create(params={"name": "No Card Inc"}, options={"stripe_account": ACCT_A})
    subaccount = world.a.subaccounts[0]

    response = client_for(world.a, world.a.admin).post(
        f"/agency/subaccounts/{subaccount.pk}/billing/customers/link/", {"customer_id": bare.id}, follow=True)

    assert "has no saved card in Stripe" in response.content.decode()
    assert profile_of(world.a, subaccount) is None
