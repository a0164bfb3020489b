"""billing/services.py where the rest of the suite does not look: the services' own refusals (behind the views'
checks), Stripe objects that are gone without a trace, and the customer made anew after a deletion or a reconnect."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import BillingProfile, PaymentRequest
from billing.services import (
    billing_card_sync,
    card_remove,
    card_setup_start,
    payment_link_open,
    payment_link_send,
    payment_link_token,
    stripe_customer_link,
)
from devservices.localstripe_server import clear_recorded_requests
from rebilling.models import SubAccountRebilling
from stripe_connect.gateway import AgencyStripe
from stripe_connect.models import ConnectedAccount
from subaccounts.models import AuditEntry, Membership
from tests.billing.fixtures import ACCT_A, api_requests, card, customer_with_card, on
from tests.billing.helpers import add_card_on_company_billing, profile_of
from tests.conftest import client_for
from tests.queued_jobs import queued as _queued

MISSING = "cus_NoLongerAtStripe0"
ACCT_A_NEW = "acct_1RebillAlphaNEWAA"
NO_CARD = {"card_payment_method_id": "", "card_brand": "", "card_last4": "", "card_exp_month": None,
           "card_exp_year": None}


def _posts(base: str, path: str) -> list[dict]:
    return [r for r in api_requests(base) if r["method"] == "POST" and r["path"] == path]


def _card_fields(profile: BillingProfile) -> dict:
    return {name: getattr(profile, name) for name in NO_CARD}


def _on_file(agency_world, subaccount) -> BillingProfile:
    profile = profile_of(agency_world, subaccount)
    assert profile is not None
    return profile


def test_a_customer_stripe_no_longer_knows_at_all_is_forgotten_and_replaced(world, connected, localstripe):
    # given client 1 added a card, and its customer then vanished from the account without a deleted stub
    # (Stripe answers resource_missing, as after the agency deletes its test data)
    subaccount = world.a.subaccounts[0]
    owner = client_for(world.a, world.a.account_admins[0])
    add_card_on_company_billing(owner, subaccount, localstripe)
    with tenant_context(world.a.agency):
        BillingProfile.objects.filter(subaccount=subaccount).update(stripe_customer_id=MISSING)
    clear_recorded_requests(localstripe)

    # when the account admin adds a card again
    response = add_card_on_company_billing(owner, subaccount, localstripe, number="5555555555554444")

    # then it works, on a new customer made with a key that names the one it replaces
    assert "Your card is saved." in response.content.decode()
    profile = profile_of(world.a, subaccount)
    assert profile.stripe_customer_id not in ("", MISSING)
    assert profile.card_last4 == "4444"
    [create] = [r for r in api_requests(localstripe) if r["method"] == "POST" and r["path"] == "/v1/customers"]
    assert create["idempotency_key"] == f"customer:alpha:{profile.pk}:{ACCT_A}:replacing:{MISSING}"
    with tenant_context(world.a.agency):
        forgotten = AuditEntry.objects.get(action=AuditEntry.Action.CUSTOMER_FORGOTTEN)
        assert forgotten.before["stripe_customer_id"] == MISSING


def test_the_services_themselves_refuse_the_wrong_person_and_say_why(world, connected, localstripe):
    # the views answer 404 first; the services refuse on their own too, for any other caller
    subaccount = world.a.subaccounts[0]
    clear_recorded_requests(localstripe)
    with tenant_context(world.a.agency):
        for person in (world.a.agency_user, world.a.account_admins[0]):
            with pytest.raises(PermissionError, match=r"^Only agency admins ask clients for a card\.$"):
                payment_link_send(subaccount=subaccount, by=person, link_url=lambda token: token)
            with pytest.raises(PermissionError, match=r"^Only agency admins ask clients for a card\.$"):
                stripe_customer_link(subaccount=subaccount, customer_id="cus_x", by=person)
        for person in (world.a.admin, world.a.account_admins[1]):
            with pytest.raises(PermissionError, match=r"^Only the sub-account's account admins manage its card\.$"):
                card_setup_start(subaccount=subaccount, by=person)
            with pytest.raises(PermissionError, match=r"^Only the sub-account's account admins manage its card\.$"):
                card_remove(subaccount=subaccount, by=person)
        assert not BillingProfile.objects.exists()
    assert api_requests(localstripe) == []


def test_asking_a_client_without_account_admins_for_a_card_is_refused_with_the_reason(world, connected):
    subaccount = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        Membership.objects.filter(subaccount=subaccount).update(role=Membership.Role.ACCOUNT_USER)
        for ask in (lambda: payment_link_send(subaccount=subaccount, by=world.a.admin, link_url=lambda token: token),
                    lambda: stripe_customer_link(subaccount=subaccount, customer_id="cus_x", by=world.a.admin)):
            with pytest.raises(ValidationError) as refused:
                ask()
            assert refused.value.messages == [
                "Add an account admin to this sub-account first: only the client's account admins can add a card."]



def test_a_new_card_on_file_retries_the_wallets_recharge_and_no_card_does_not(
        world, connected, localstripe, raw_stripe, django_capture_on_commit_callbacks, jobs_left_queued):
    task = "wallets.tasks.wallet_card_replaced_task"
    # given client 1 has a card on file
    subaccount = world.a.subaccounts[0]
    add_card_on_company_billing(client_for(world.a, world.a.account_admins[0]), subaccount, localstripe)
    profile = profile_of(world.a, subaccount)
    assert _queued(task) == []  # (the page's transaction was never committed)

    # when another card becomes the customer's default at Stripe and the card on file follows it
    newer = raw_stripe.v1.payment_methods.create(params={"type": "card", "card": card("5555555555554444")},
                                                 options=on(ACCT_A))
    raw_stripe.v1.payment_methods.attach(newer.id, params={"customer": profile.stripe_customer_id},
                                         options=on(ACCT_A))
    raw_stripe.v1.customers.update(profile.stripe_customer_id, params={
        "invoice_settings": {"default_payment_method": newer.id}}, options=on(ACCT_A))
    with tenant_context(world.a.agency), django_capture_on_commit_callbacks(execute=True):
        assert billing_card_sync(profile=profile, api=AgencyStripe(ACCT_A)).card_last4 == "4444"
    # then the wallet's failed recharge is retried for that sub-account, in its agency
    assert _queued(task) == [("alpha", [subaccount.pk])]

    # and when every card is removed at Stripe, nothing is retried
    for method in raw_stripe.v1.customers.payment_methods.list(profile.stripe_customer_id, params={"type": "card"},
                                                                options=on(ACCT_A)).data:
        raw_stripe.v1.payment_methods.detach(method.id, options=on(ACCT_A))
    with tenant_context(world.a.agency), django_capture_on_commit_callbacks(execute=True):
        assert billing_card_sync(profile=profile, api=AgencyStripe(ACCT_A)).card_last4 == ""
    assert _queued(task) == [("alpha", [subaccount.pk])]


def test_a_card_saved_by_one_client_spends_only_that_clients_open_links(world, connected, localstripe):
    # given open payment links for both clients of agency A, and an expired one for client 1
    first, second = world.a.subaccounts
    with tenant_context(world.a.agency):
        def link(subaccount, **fields):
            fields.setdefault("expires_at", timezone.now() + timedelta(days=3))
            fields.setdefault("status", PaymentRequest.Status.SENT)
            return PaymentRequest.objects.create(subaccount=subaccount, kind=PaymentRequest.Kind.LINK_EMAILED,
                                                 requested_by=world.a.admin, **fields)
        own, others, expired = link(first), link(second), link(first, expires_at=timezone.now() - timedelta(days=1))
        used_at = timezone.now() - timedelta(days=1)
        spent = link(first, status=PaymentRequest.Status.COMPLETED, used_at=used_at)

    # when client 1's account admin saves a card
    add_card_on_company_billing(client_for(world.a, world.a.account_admins[0]), first, localstripe)

    # then client 1's open link is spent, and client 2's link, the expired one and the spent one are untouched
    with tenant_context(world.a.agency):
        statuses = {r.pk: r.status for r in PaymentRequest.objects.all()}
        assert statuses == {own.pk: PaymentRequest.Status.COMPLETED, others.pk: PaymentRequest.Status.SENT,
                            expired.pk: PaymentRequest.Status.SENT, spent.pk: PaymentRequest.Status.COMPLETED}
        spent.refresh_from_db()
        assert (spent.used_at, spent.used_by) == (used_at, None)
        assert list(AuditEntry.objects.filter(action=AuditEntry.Action.PAYMENT_LINK_USED)
                    .values_list("subaccount_id", "after__payment_request")) == [(first.pk, own.pk)]


def test_a_customer_deleted_at_stripe_is_replaced_by_one_made_for_the_client_and_the_old_card_is_dropped(
        world, connected, localstripe, raw_stripe):
    # given client 1 has card 4242 on file, and the agency then deleted its customer in the Stripe dashboard
    subaccount = world.a.subaccounts[0]
    add_card_on_company_billing(client_for(world.a, world.a.account_admins[0]), subaccount, localstripe)
    old = _on_file(world.a, subaccount)
    raw_stripe.v1.customers.delete(old.stripe_customer_id, options=on(ACCT_A))
    clear_recorded_requests(localstripe)

    # when the account admin starts adding a card again (and goes no further)
    with tenant_context(world.a.agency):
        setup = card_setup_start(subaccount=subaccount, by=world.a.account_admins[0])

    # then the deleted customer's card is no longer on file, and a new customer is made for this client
    profile = _on_file(world.a, subaccount)
    assert profile.stripe_customer_id not in ("", old.stripe_customer_id)
    assert profile.stripe_account_id == ACCT_A
    assert _card_fields(profile) == NO_CARD and not profile.has_card
    customer = raw_stripe.v1.customers.retrieve(profile.stripe_customer_id, options=on(ACCT_A))
    assert (customer.name, customer.email) == (subaccount.name, subaccount.contact_email)
    assert customer.metadata.to_dict() == {"rebill_schema": "alpha", "rebill_subaccount": str(subaccount.pk)}
    # and the card form's SetupIntent is the new customer's, labelled with our rows, made with the setup's key
    intent = raw_stripe.v1.setup_intents.retrieve(setup.setup_intent_id, options=on(ACCT_A))
    assert intent.customer == profile.stripe_customer_id
    assert intent.metadata.to_dict() == {"rebill_schema": "alpha", "rebill_subaccount": str(subaccount.pk),
                                         "rebill_card_setup": str(setup.pk)}
    [create] = _posts(localstripe, "/v1/setup_intents")
    assert create["idempotency_key"] == f"setup_intent:alpha:{setup.pk}"
    # and the audit log says Stripe's deletion made us forget that customer and the card it held
    with tenant_context(world.a.agency):
        forgotten = AuditEntry.objects.get(action=AuditEntry.Action.CUSTOMER_FORGOTTEN)
    assert (forgotten.subaccount_id, forgotten.actor) == (subaccount.pk, "Stripe")
    assert forgotten.before == {"stripe_customer_id": old.stripe_customer_id, **_card_fields(old)}
    assert forgotten.before["card_last4"] == "4242"
    assert forgotten.after == {"stripe_customer_id": ""}


def test_after_a_reconnect_a_new_customer_is_made_on_the_new_account_and_the_old_card_dropped(
        world, connected, localstripe, raw_stripe):
    # given client 1 has a card on file on ACCT_A, and agency A then connected another Stripe account
    subaccount = world.a.subaccounts[0]
    add_card_on_company_billing(client_for(world.a, world.a.account_admins[0]), subaccount, localstripe)
    old = _on_file(world.a, subaccount)
    connection.set_schema_to_public()
    ConnectedAccount.objects.filter(agency=world.a.agency).update(account_id=ACCT_A_NEW)
    clear_recorded_requests(localstripe)

    # when the account admin starts adding a card
    with tenant_context(world.a.agency):
        card_setup_start(subaccount=subaccount, by=world.a.account_admins[0])

    # then the customer on the old account is not looked for on the new one, nor "forgotten": a new customer is made
    # on the new account, with the key of our row on that account, and the old account's card is off file
    [create] = _posts(localstripe, "/v1/customers")
    assert create["idempotency_key"] == f"customer:alpha:{old.pk}:{ACCT_A_NEW}"
    assert create["stripe_account"] == ACCT_A_NEW
    assert not [r for r in api_requests(localstripe) if r["path"] == f"/v1/customers/{old.stripe_customer_id}"]
    profile = _on_file(world.a, subaccount)
    assert profile.stripe_account_id == ACCT_A_NEW
    assert raw_stripe.v1.customers.retrieve(profile.stripe_customer_id, options=on(ACCT_A_NEW)).name == subaccount.name
    assert _card_fields(profile) == NO_CARD
    with tenant_context(world.a.agency):
        assert not AuditEntry.objects.filter(action=AuditEntry.Action.CUSTOMER_FORGOTTEN).exists()


def test_removing_a_card_is_refused_with_the_reason_when_the_agencys_stripe_has_changed(
        world, connected, localstripe, raw_stripe):
    # given client 1 has a card on file on ACCT_A
    subaccount = world.a.subaccounts[0]
    owner = client_for(world.a, world.a.account_admins[0])
    add_card_on_company_billing(owner, subaccount, localstripe)

    # when agency A connected another account, then removing it says why nothing was done
    connection.set_schema_to_public()
    ConnectedAccount.objects.filter(agency=world.a.agency).update(account_id=ACCT_A_NEW)
    with tenant_context(world.a.agency), pytest.raises(ValidationError) as refused:
        card_remove(subaccount=subaccount, by=world.a.account_admins[0])
    assert refused.value.messages == [
        "This card was made on a Stripe account your agency is no longer connected to, so nothing was changed. "
        "Start again from Company Billing."]

    # and when agency A disconnected Stripe altogether, it says that instead
    connection.set_schema_to_public()
    ConnectedAccount.objects.filter(agency=world.a.agency).delete()
    with tenant_context(world.a.agency), pytest.raises(ValidationError) as refused:
        card_remove(subaccount=subaccount, by=world.a.account_admins[0])
    assert refused.value.messages == ["Connect your agency's Stripe account first (Settings → Stripe)."]
    assert _on_file(world.a, subaccount).has_card


def test_a_customer_deleted_at_stripe_takes_the_card_off_file_at_the_next_sync(world, connected, localstripe,
                                                                               raw_stripe):
    # given client 1 has a card on file, and the agency then deleted its customer in the Stripe dashboard
    subaccount = world.a.subaccounts[0]
    add_card_on_company_billing(client_for(world.a, world.a.account_admins[0]), subaccount, localstripe)
    profile = _on_file(world.a, subaccount)
    raw_stripe.v1.customers.delete(profile.stripe_customer_id, options=on(ACCT_A))

    # when the card on file is synced from Stripe (an event about it arrives)
    with tenant_context(world.a.agency):
        synced = billing_card_sync(profile=profile, api=AgencyStripe(ACCT_A))

        # then no card is on file any more, and the audit log says Stripe changed it
        assert _card_fields(synced) == NO_CARD
        entry = AuditEntry.objects.filter(action=AuditEntry.Action.CARD_SYNCED).latest("pk")
    assert (entry.actor, entry.before["card_last4"], entry.after) == ("Stripe", "4242", NO_CARD)


def test_a_card_saved_through_a_payment_link_is_audited_as_the_person_who_saved_it(
        world, connected, localstripe):
    subaccount = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        link = PaymentRequest.objects.create(subaccount=subaccount, kind=PaymentRequest.Kind.LINK_EMAILED,
                                             status=PaymentRequest.Status.OPENED, requested_by=world.a.admin,
                                             expires_at=timezone.now() + timedelta(days=3))

    add_card_on_company_billing(client_for(world.a, world.a.account_admins[0]), subaccount, localstripe)

    with tenant_context(world.a.agency):
        used = AuditEntry.objects.get(action=AuditEntry.Action.PAYMENT_LINK_USED)
    assert (used.subaccount_id, used.actor, used.after) == (
        subaccount.pk, world.a.account_admins[0].email, {"payment_request": link.pk, "card_last4": "4242"})


def test_linking_a_customer_is_refused_in_so_many_words_and_links_nothing(world, connected, raw_stripe):
    # given, on agency A's account: a deleted customer, two without a card (one nameless), one with a card
    first, second = world.a.subaccounts
    deleted = raw_stripe.v1.customers.create(params={"name": "Gone Ltd"}, options=on(ACCT_A))
    raw_stripe.v1.customers.delete(deleted.id, options=on(ACCT_A))
    bare = raw_stripe.v1.customers.create(params={"name": "No Card Inc"}, options=on(ACCT_A))
    nameless = raw_stripe.v1.customers.create(params={}, options=on(ACCT_A))
    linked, _ = customer_with_card(raw_stripe, ACCT_A, name="Acme Dental")
    with tenant_context(world.a.agency):
        # (the customer with a card is linked to client 1, its id pasted with spaces around it)
        stripe_customer_link(subaccount=first, customer_id=f" {linked.id} ", by=world.a.admin)
        assert profile_of(world.a, first).stripe_customer_id == linked.id

        # then linking any of them to client 2 is refused, saying why
        no_card = "has no saved card in Stripe. Send a payment link instead."
        for customer_id, reason in ((deleted.id, "That Stripe customer has been deleted."),
                                    (bare.id, f"No Card Inc {no_card}"), (nameless.id, f"{nameless.id} {no_card}"),
                                    (linked.id, f"That Stripe customer is already linked to {first.name}."),
                                    ("cus_NotOnThisAccount", "No such customer on your Stripe account.")):
            with pytest.raises(ValidationError) as refused:
                stripe_customer_link(subaccount=second, customer_id=customer_id, by=world.a.admin)
            assert refused.value.messages == [reason], customer_id
        assert not PaymentRequest.objects.filter(subaccount=second).exists()
    assert profile_of(world.a, second) is None


def test_removing_a_card_says_why_when_there_is_none_or_it_is_the_last_one_while_rebilling(
        world, connected, localstripe):
    subaccount, owner = world.a.subaccounts[0], world.a.account_admins[0]
    # given no card on file: removing one says so
    with tenant_context(world.a.agency), pytest.raises(ValidationError) as refused:
        card_remove(subaccount=subaccount, by=owner)
    assert refused.value.messages == ["There is no card on file."]

    # given one card and rebilling switched on: removing it says why not, and the card stays
    add_card_on_company_billing(client_for(world.a, owner), subaccount, localstripe)
    with tenant_context(world.a.agency):
        SubAccountRebilling.objects.update_or_create(subaccount=subaccount, defaults={
            "switched_on": True, "switched_on_at": timezone.now()})
        with pytest.raises(ValidationError) as refused:
            card_remove(subaccount=subaccount, by=owner)
    assert refused.value.messages == [
        "The last card cannot be removed while phone rebilling is on. Add another card, or ask your agency to switch "
        "rebilling off first."]
    assert _on_file(world.a, subaccount).has_card


def test_a_linked_customer_is_recorded_its_card_made_default_with_our_key_and_audited(world, connected, localstripe,
                                                                                     raw_stripe):
    # given client 2 already linked to its own customer on agency A's account, and client 1's customer with a card
    # but no default card
    first, second = world.a.subaccounts
    customer, card_saved = customer_with_card(raw_stripe, ACCT_A, name="Client One")
    theirs, _ = customer_with_card(raw_stripe, ACCT_A, name="Client Two")
    with tenant_context(world.a.agency):
        stripe_customer_link(subaccount=second, customer_id=theirs.id, by=world.a.admin)
        clear_recorded_requests(localstripe)

        # when the agency admin links client 1's customer
        request = stripe_customer_link(subaccount=first, customer_id=customer.id, by=world.a.admin)

        # then the request says who linked which customer, done
        request.refresh_from_db()
        assert (request.subaccount_id, request.kind, request.status, request.requested_by_id,
                request.stripe_customer_id) == (first.pk, PaymentRequest.Kind.CUSTOMER_LINKED,
                                                PaymentRequest.Status.COMPLETED, world.a.admin.pk, customer.id)
        # and the audit log has the customer and card before and after, and the sync, each by the admin
        profile = _on_file(world.a, first)
        assert profile.card_payment_method_id == card_saved.id
        linked = AuditEntry.objects.get(subaccount=first, action=AuditEntry.Action.CUSTOMER_LINKED)
        assert (linked.actor, linked.before, linked.after) == (
            world.a.admin.email, {"stripe_customer_id": "", **NO_CARD},
            {"stripe_customer_id": customer.id, **_card_fields(profile)})
        assert AuditEntry.objects.get(subaccount=first, action=AuditEntry.Action.CARD_SYNCED).actor == \
            world.a.admin.email
        # and linking the same customer to the same client again is no clash
        stripe_customer_link(subaccount=first, customer_id=customer.id, by=world.a.admin)
    # and its card was made the customer's default with a key of our request row, the one write to Stripe
    assert [(r["path"], r["idempotency_key"]) for r in api_requests(localstripe) if r["method"] == "POST"] == [
        (f"/v1/customers/{customer.id}", f"default_card_linked:alpha:{request.pk}")]


def test_linking_a_customer_keeps_its_default_card_and_writes_nothing_to_stripe(world, connected, localstripe,
                                                                              raw_stripe):
    # given a customer with two cards, the first one its default
    customer, default = customer_with_card(raw_stripe, ACCT_A, name="Client One")
    second_card = raw_stripe.v1.payment_methods.create(params={"type": "card", "card": card("5555555555554444")},
                                                       options=on(ACCT_A))
    raw_stripe.v1.payment_methods.attach(second_card.id, params={"customer": customer.id}, options=on(ACCT_A))
    raw_stripe.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": default.id}},
                                   options=on(ACCT_A))
    clear_recorded_requests(localstripe)

    with tenant_context(world.a.agency):
        stripe_customer_link(subaccount=world.a.subaccounts[0], customer_id=customer.id, by=world.a.admin)

    assert _on_file(world.a, world.a.subaccounts[0]).card_payment_method_id == default.id
    assert [r for r in api_requests(localstripe) if r["method"] == "POST"] == []


def test_a_card_is_removed_while_rebilling_is_on_when_another_remains_which_becomes_the_card_on_file(
        world, connected, localstripe, raw_stripe):
    # given client 1 linked to a customer with two cards, and rebilling on
    subaccount = world.a.subaccounts[0]
    customer, removed = customer_with_card(raw_stripe, ACCT_A, name="Client One")
    other = raw_stripe.v1.payment_methods.create(params={"type": "card", "card": card("5555555555554444")},
                                                 options=on(ACCT_A))
    raw_stripe.v1.payment_methods.attach(other.id, params={"customer": customer.id}, options=on(ACCT_A))
    raw_stripe.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": removed.id}},
                                   options=on(ACCT_A))
    with tenant_context(world.a.agency):
        stripe_customer_link(subaccount=subaccount, customer_id=customer.id, by=world.a.admin)
        SubAccountRebilling.objects.update_or_create(subaccount=subaccount, defaults={
            "switched_on": True, "switched_on_at": timezone.now()})

        before = _card_fields(_on_file(world.a, subaccount))
        clear_recorded_requests(localstripe)

        # when the account admin removes the card on file
        owner = world.a.account_admins[0]
        card_remove(subaccount=subaccount, by=owner)

        # then the other card is the customer's default and the card on file
        profile = _on_file(world.a, subaccount)
        assert (profile.card_payment_method_id, profile.card_last4) == (other.id, "4444")
        # and the removal and the sync are in the audit log, by the account admin, with the cards before and after
        removal = AuditEntry.objects.get(subaccount=subaccount, action=AuditEntry.Action.CARD_REMOVED)
        assert (removal.actor, removal.before, removal.after) == (owner.email, before, _card_fields(profile))
        assert AuditEntry.objects.filter(subaccount=subaccount, action=AuditEntry.Action.CARD_SYNCED).latest(
            "pk").actor == owner.email
    assert raw_stripe.v1.customers.retrieve(customer.id, options=on(ACCT_A)).invoice_settings \
        .default_payment_method == other.id
    # and each write carried a key of the profile and the removed card
    assert [(r["path"], r["idempotency_key"]) for r in api_requests(localstripe) if r["method"] == "POST"] == [
        (f"/v1/payment_methods/{removed.id}/detach", f"detach:alpha:{profile.pk}:{removed.id}"),
        (f"/v1/customers/{customer.id}", f"default_after_detach:alpha:{profile.pk}:{removed.id}")]


def test_opening_a_link_is_refused_by_the_service_itself_to_anyone_but_that_clients_account_admins(world, connected):
    # the page checks first; the service checks again under the request's lock, for any other caller
    subaccount = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        request = payment_link_send(subaccount=subaccount, by=world.a.admin, link_url=lambda token: token)
        token = payment_link_token(request=request)
        with pytest.raises(ValidationError) as refused:
            payment_link_open(token=token, by=world.a.account_admins[1])
        assert refused.value.messages == [f"This link is for the account admins of {subaccount.name}. "
                                          "Sign in with the account it was sent to."]
        request.refresh_from_db()
        assert (request.status, request.used_by_id) == (PaymentRequest.Status.SENT, None)

        opened = payment_link_open(token=token, by=world.a.account_admins[0])
        assert (opened.status, opened.used_by_id) == (PaymentRequest.Status.OPENED, world.a.account_admins[0].pk)


def test_a_payment_link_request_records_who_asked_and_every_account_admin_it_went_to(world, connected, mailoutbox,
                                                                                     settings):
    # given client 1 with a second account admin
    subaccount = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        Membership.objects.create(subaccount=subaccount, user=world.a.account_admins[1],
                                  role=Membership.Role.ACCOUNT_ADMIN)
        # when the agency admin asks for a card
        tokens: list[str] = []
        request = payment_link_send(subaccount=subaccount, by=world.a.admin,
                                    link_url=lambda token: tokens.append(token) or f"https://link.test/{token}")
        request.refresh_from_db()
        sent = AuditEntry.objects.get(action=AuditEntry.Action.PAYMENT_LINK_SENT)
    # then the request names the agency admin and both recipients, as the email and the audit log do
    [email] = mailoutbox
    assert len(email.to) == 2
    assert (request.requested_by_id, request.recipients) == (world.a.admin.pk, ", ".join(email.to))
    assert (sent.subaccount_id, sent.actor, sent.after) == (
        subaccount.pk, world.a.admin.email, {"payment_request": request.pk, "recipients": email.to})
    # and the email says for how long the link works
    assert email.body == (
        f"Alpha Agency asks you to add a payment card for {subaccount.name}.\n\n"
        "Open Company Billing here (you may be asked to sign in). The link works until a card is saved through it, "
        f"for up to {settings.PAYMENT_LINK_MAX_AGE.days} days:\nhttps://link.test/{tokens[0]}\n")


def test_a_sync_reads_only_the_profiles_own_account_and_takes_off_a_card_whose_customer_stripe_no_longer_knows(
        world, connected, localstripe):
    # given client 1's card on file on agency A's account
    subaccount = world.a.subaccounts[0]
    add_card_on_company_billing(client_for(world.a, world.a.account_admins[0]), subaccount, localstripe)
    with tenant_context(world.a.agency):
        profile = _on_file(world.a, subaccount)
        on_file = _card_fields(profile)
        # when a sync runs through another account, or for a profile with no customer yet, nothing is asked
        clear_recorded_requests(localstripe)
        assert _card_fields(billing_card_sync(profile=profile, api=AgencyStripe(ACCT_A_NEW))) == on_file
        bare = BillingProfile.objects.create(subaccount=world.a.subaccounts[1], stripe_account_id=ACCT_A)
        assert _card_fields(billing_card_sync(profile=bare, api=AgencyStripe(ACCT_A))) == NO_CARD
        assert api_requests(localstripe) == []

        # when Stripe no longer knows the client's customer at all, the next sync takes the card off file
        BillingProfile.objects.filter(pk=profile.pk).update(stripe_customer_id=MISSING)
        before = timezone.now()
        assert _card_fields(billing_card_sync(profile=profile, api=AgencyStripe(ACCT_A))) == NO_CARD
        # saying when, and in the client's audit log what card it was
        synced = AuditEntry.objects.filter(action=AuditEntry.Action.CARD_SYNCED).latest("pk")
        assert (synced.subaccount_id, synced.actor, synced.before, synced.after) == (
            subaccount.pk, "Stripe", on_file, NO_CARD)
    profile = _on_file(world.a, subaccount)
    assert not profile.has_card and before <= profile.card_updated_at <= timezone.now()
