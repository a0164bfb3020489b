"""The layer in front of localstripe behaves like real Stripe where our product relies on it.

A real launcher process and the real stripe SDK; see tests/devservices/conftest.py.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, cast

import pytest
import stripe

from devservices.localstripe_server import (
    answer_slowly,
    clear_recorded_requests,
    next_refund_answers,
    recorded_requests,
    register_account,
    reset,
)
from tests.devservices.conftest import SECRET_KEY, WebhookReceiver

ACCT_A = "acct_1AgencyAAAAAAAAA"
ACCT_B = "acct_1AgencyBBBBBBBBB"


def card(number: str = "4242424242424242") -> Any:
    return {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}


def on(account: str | None, idempotency_key: str | None = None) -> stripe.RequestOptions:
    options = stripe.RequestOptions()
    if account:
        options["stripe_account"] = account
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    return options


def customer_with_card(client: stripe.StripeClient, account: str | None, number: str = "4242424242424242",
                       **customer: Any) -> tuple[stripe.Customer, stripe.PaymentMethod]:
    cus = client.v1.customers.create(params=cast(Any, customer), options=on(account))
    pm = client.v1.payment_methods.create(params={"type": "card", "card": card(number)}, options=on(account))
    client.v1.payment_methods.attach(pm.id, params={"customer": cus.id}, options=on(account))
    return cus, pm


def charge_params(cus: stripe.Customer, pm: stripe.PaymentMethod, amount: int = 1500) -> Any:
    return {"amount": amount, "currency": "usd", "customer": cus.id, "payment_method": pm.id,
            "off_session": True, "confirm": True}


def payment_intent_ids(client: stripe.StripeClient, account: str | None) -> list[str]:
    return [pi.id for pi in client.v1.payment_intents.list(params={"limit": 100}, options=on(account)).data]


def assert_missing(excinfo: pytest.ExceptionInfo[stripe.InvalidRequestError], status: int = 404) -> None:
    assert excinfo.value.code == "resource_missing"
    assert excinfo.value.http_status == status


# --- idempotency ------------------------------------------------------------------------------

def test_same_idempotency_key_replays_the_first_payment_intent(stripe_client: stripe.StripeClient) -> None:
    cus, pm = customer_with_card(stripe_client, ACCT_A)
    options = on(ACCT_A, idempotency_key="charge:client_1:42")

    first = stripe_client.v1.payment_intents.create(params=charge_params(cus, pm), options=options)
    second = stripe_client.v1.payment_intents.create(params=charge_params(cus, pm), options=options)

    assert first.status == "succeeded"
    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert first.last_response is not None and "Idempotent-Replayed" not in first.last_response.headers
    assert payment_intent_ids(stripe_client, ACCT_A) == [first.id]


def test_same_idempotency_key_with_other_parameters_is_refused(stripe_client: stripe.StripeClient) -> None:
    cus, pm = customer_with_card(stripe_client, ACCT_A)
    options = on(ACCT_A, idempotency_key="charge:client_1:43")
    first = stripe_client.v1.payment_intents.create(params=charge_params(cus, pm, 1500), options=options)

    with pytest.raises(stripe.IdempotencyError) as excinfo:
        stripe_client.v1.payment_intents.create(params=charge_params(cus, pm, 2500), options=options)

    assert excinfo.value.http_status == 400
    assert excinfo.value.error is not None and excinfo.value.error.type == "idempotency_error"
    assert "same parameters" in str(excinfo.value.user_message)
    assert payment_intent_ids(stripe_client, ACCT_A) == [first.id]


def test_a_second_request_while_the_first_with_its_key_is_in_flight_gets_409(
        localstripe: str, stripe_client: stripe.StripeClient) -> None:
    cus, pm = customer_with_card(stripe_client, ACCT_A)
    options = on(ACCT_A, idempotency_key="charge:client_1:44")
    answer_slowly(localstripe, method="POST", path="/v1/payment_intents", seconds=1.5)
    first: queue.Queue[Any] = queue.Queue()
    thread = threading.Thread(target=lambda: first.put(stripe_client.v1.payment_intents.create(
        params=charge_params(cus, pm, 1500), options=options)))
    thread.start()
    time.sleep(0.5)

    # (stripe-python raises a 409 as an APIError: only a 400 or 404 of this type is an IdempotencyError)
    with pytest.raises(stripe.APIError) as excinfo:
        stripe_client.v1.payment_intents.create(params=charge_params(cus, pm, 1500), options=options)
    thread.join()

    assert excinfo.value.http_status == 409
    assert excinfo.value.error is not None and excinfo.value.error.type == "idempotency_error"
    assert "another in-progress request using this idempotency key ('charge:client_1:44')" in str(
        excinfo.value.user_message)
    # only the next request was slow: the first is made once, and a retry now replays it at once
    made = first.get_nowait()
    started = time.monotonic()
    again = stripe_client.v1.payment_intents.create(params=charge_params(cus, pm, 1500), options=options)
    assert again.id == made.id and time.monotonic() - started < 1
    assert payment_intent_ids(stripe_client, ACCT_A) == [made.id]


def test_a_slow_answer_needs_a_v1_path_and_a_sensible_delay(localstripe: str) -> None:
    for path, seconds in (("/oauth/token", 1), ("/v1/refunds", 0), ("/v1/refunds", 31)):
        with pytest.raises(urllib.error.HTTPError) as excinfo:
            answer_slowly(localstripe, method="POST", path=path, seconds=seconds)
        assert excinfo.value.code == 400


def test_a_refund_outcome_must_be_a_status_stripe_gives_refunds(localstripe: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        next_refund_answers(localstripe, "refused")
    assert excinfo.value.code == 400


def test_idempotency_keys_are_scoped_per_account(stripe_client: stripe.StripeClient) -> None:
    cus_a, pm_a = customer_with_card(stripe_client, ACCT_A)
    cus_b, pm_b = customer_with_card(stripe_client, ACCT_B)

    pi_a = stripe_client.v1.payment_intents.create(params=charge_params(cus_a, pm_a),
                                                   options=on(ACCT_A, idempotency_key="same-key"))
    pi_b = stripe_client.v1.payment_intents.create(params=charge_params(cus_b, pm_b),
                                                   options=on(ACCT_B, idempotency_key="same-key"))

    assert pi_a.id != pi_b.id


def test_a_declined_charge_is_replayed_as_the_same_decline(stripe_client: stripe.StripeClient) -> None:
    cus, pm = customer_with_card(stripe_client, ACCT_A, number="4000000000000341")
    options = on(ACCT_A, idempotency_key="charge:client_1:44")

    for _ in range(2):
        with pytest.raises(stripe.CardError) as excinfo:
            stripe_client.v1.payment_intents.create(params=charge_params(cus, pm), options=options)
        assert excinfo.value.code == "card_declined"

    assert len(payment_intent_ids(stripe_client, ACCT_A)) == 1


def test_card_0341_attaches_but_is_declined_when_charged(stripe_client: stripe.StripeClient) -> None:
    cus, pm = customer_with_card(stripe_client, ACCT_A, number="4000000000000341")
    attached = stripe_client.v1.payment_methods.retrieve(pm.id, options=on(ACCT_A))
    assert attached.customer == cus.id

    with pytest.raises(stripe.CardError) as excinfo:
        stripe_client.v1.payment_intents.create(params=charge_params(cus, pm), options=on(ACCT_A))

    assert excinfo.value.code == "card_declined"
    assert excinfo.value.http_status == 402


# --- Stripe-Account separation ----------------------------------------------------------------

def test_objects_of_one_account_are_invisible_to_others(stripe_client: stripe.StripeClient) -> None:
    cus_a, pm_a = customer_with_card(stripe_client, ACCT_A, name="Acme Dental", email="ops@acme.test")
    cus_b, pm_b = customer_with_card(stripe_client, ACCT_B)
    platform_customer = stripe_client.v1.customers.create(params={"name": "Platform only"})

    assert stripe_client.v1.customers.retrieve(cus_a.id, options=on(ACCT_A)).name == "Acme Dental"
    for account in (ACCT_B, None):
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            stripe_client.v1.customers.retrieve(cus_a.id, options=on(account))
        assert_missing(excinfo)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.retrieve(platform_customer.id, options=on(ACCT_A))
    assert_missing(excinfo)

    def listed(account: str | None) -> list[str]:
        return [c.id for c in stripe_client.v1.customers.list(options=on(account)).data]

    assert listed(ACCT_A) == [cus_a.id]
    assert listed(ACCT_B) == [cus_b.id]
    assert listed(None) == [platform_customer.id]
    assert stripe_client.v1.customers.list(params={"email": "ops@acme.test"}, options=on(ACCT_B)).data == []


def test_another_accounts_customer_or_card_cannot_be_used(stripe_client: stripe.StripeClient) -> None:
    cus_a, pm_a = customer_with_card(stripe_client, ACCT_A)
    cus_b, pm_b = customer_with_card(stripe_client, ACCT_B)

    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(params=charge_params(cus_a, pm_a), options=on(ACCT_B))
    assert excinfo.value.code == "resource_missing"
    assert excinfo.value.param == "customer"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(params=charge_params(cus_b, pm_a), options=on(ACCT_B))
    assert excinfo.value.code == "resource_missing"
    assert excinfo.value.param == "payment_method"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.update(
            cus_b.id, params={"invoice_settings": {"default_payment_method": pm_a.id}}, options=on(ACCT_B))
    assert excinfo.value.param == "invoice_settings[default_payment_method]"

    # Nested ids in the path, and a body parameter naming another account's customer.
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_methods.attach(pm_a.id, params={"customer": cus_b.id}, options=on(ACCT_B))
    assert_missing(excinfo)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_methods.attach(pm_b.id, params={"customer": cus_a.id}, options=on(ACCT_B))
    assert excinfo.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.payment_methods.list(cus_a.id, options=on(ACCT_B))
    assert_missing(excinfo)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.payment_sources.list(cus_a.id, options=on(ACCT_B))
    assert_missing(excinfo)

    pending = stripe_client.v1.payment_intents.create(
        params={"amount": 900, "currency": "usd", "customer": cus_a.id, "payment_method": pm_a.id},
        options=on(ACCT_A))
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.confirm(pending.id, options=on(ACCT_B))
    assert_missing(excinfo)
    assert stripe_client.v1.payment_intents.confirm(pending.id, options=on(ACCT_A)).status == "succeeded"

    assert payment_intent_ids(stripe_client, ACCT_B) == []
    assert payment_intent_ids(stripe_client, ACCT_A) == [pending.id]


def test_lists_page_through_the_accounts_own_objects(stripe_client: stripe.StripeClient) -> None:
    mine = [stripe_client.v1.customers.create(params={"name": f"A{i}"}, options=on(ACCT_A)).id
            for i in range(3)]
    for i in range(4):
        stripe_client.v1.customers.create(params={"name": f"B{i}"}, options=on(ACCT_B))

    page = stripe_client.v1.customers.list(params={"limit": 2}, options=on(ACCT_A))
    assert page.has_more is True
    rest = stripe_client.v1.customers.list(params={"limit": 2, "starting_after": page.data[-1].id},
                                           options=on(ACCT_A))
    assert rest.has_more is False
    assert sorted(c.id for c in [*page.data, *rest.data]) == sorted(mine)


def test_webhook_events_for_a_connected_account_carry_it_and_verify(
        stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver) -> None:
    platform_customer = stripe_client.v1.customers.create(params={"name": "Platform"})
    cus, pm = customer_with_card(stripe_client, ACCT_A)
    pi = stripe_client.v1.payment_intents.create(params=charge_params(cus, pm), options=on(ACCT_A))

    # Keyed by object id: deliveries of events from earlier tests may still arrive here.
    events: dict[str, stripe.Event] = {}
    deadline = time.monotonic() + 10
    while not {cus.id, pi.id, platform_customer.id} <= events.keys() and time.monotonic() < deadline:
        try:
            body, signature = webhook_receiver.next(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        event = stripe.Webhook.construct_event(body, signature, webhook_receiver.secret)
        events[event.data.object.id] = event

    assert events[cus.id].type == "customer.created"
    assert events[cus.id].account == ACCT_A
    assert events[pi.id].type == "payment_intent.succeeded"
    assert events[pi.id].account == ACCT_A
    assert "account" not in events[platform_customer.id]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, "whsec_someone_else")

    listed = stripe_client.v1.events.list(options=on(ACCT_A)).data
    assert {e.data.object.id for e in listed} >= {cus.id, pi.id}
    assert all(e.account == ACCT_A for e in listed)


def test_the_request_record_shows_each_requests_account(stripe_client: stripe.StripeClient,
                                                        localstripe: str) -> None:
    stripe_client.v1.customers.create(params={"name": "x"}, options=on(ACCT_A, idempotency_key="k1"))
    clear_recorded_requests(localstripe)
    cus = stripe_client.v1.customers.create(params={"name": "y"}, options=on(ACCT_A, idempotency_key="k2"))
    stripe_client.v1.customers.retrieve(cus.id, options=on(ACCT_A))
    stripe_client.v1.customers.list(options=on(ACCT_B))
    stripe_client.v1.customers.list()

    assert recorded_requests(localstripe) == [
        {"method": "POST", "path": "/v1/customers", "stripe_account": ACCT_A, "idempotency_key": "k2"},
        {"method": "GET", "path": f"/v1/customers/{cus.id}", "stripe_account": ACCT_A,
         "idempotency_key": None},
        {"method": "GET", "path": "/v1/customers", "stripe_account": ACCT_B, "idempotency_key": None},
        {"method": "GET", "path": "/v1/customers", "stripe_account": None, "idempotency_key": None},
    ]


def test_stripe_js_confirm_with_the_client_secret_acts_as_the_intents_account(
        stripe_client: stripe.StripeClient, localstripe: str) -> None:
    # localstripe's Stripe.js mock sends only the publishable key and the client secret.
    cus = stripe_client.v1.customers.create(options=on(ACCT_A))
    seti = stripe_client.v1.setup_intents.create(params={"customer": cus.id, "usage": "off_session"},
                                                 options=on(ACCT_A))
    body = json.dumps({"key": "pk_test_x", "client_secret": seti.client_secret,
                       "payment_method_data": {"type": "card", "card": card()}}).encode()
    request = urllib.request.Request(f"{localstripe}/v1/setup_intents/{seti.id}/confirm", data=body,
                                     method="POST")
    with urllib.request.urlopen(request) as response:
        confirmed = json.load(response)

    assert confirmed["status"] == "succeeded"
    pm = stripe_client.v1.payment_methods.retrieve(confirmed["payment_method"], options=on(ACCT_A))
    assert pm.card is not None and pm.card.last4 == "4242"


# --- parameters and endpoints localstripe lacks -----------------------------------------------

def test_parameters_our_product_sends_are_accepted(stripe_client: stripe.StripeClient) -> None:
    cus = stripe_client.v1.customers.create(
        params={"name": "Acme", "email": "billing@acme.test", "metadata": {"subaccount": "7"}},
        options=on(ACCT_A))
    seti = stripe_client.v1.setup_intents.create(
        params=cast(Any, {"customer": cus.id, "usage": "off_session", "payment_method_types": ["card"],
                          "metadata": {"subaccount": "7"}}), options=on(ACCT_A))
    assert seti.usage == "off_session"
    pm = stripe_client.v1.payment_methods.create(params={"type": "card", "card": card()}, options=on(ACCT_A))
    stripe_client.v1.payment_methods.attach(pm.id, params={"customer": cus.id}, options=on(ACCT_A))
    updated = stripe_client.v1.customers.update(
        cus.id, params={"name": "Acme Inc", "invoice_settings": {"default_payment_method": pm.id}},
        options=on(ACCT_A))
    assert updated.invoice_settings is not None and updated.invoice_settings.default_payment_method == pm.id

    # stripe 16's typed params name it `allowed_payment_method_types`; the layer accepts both.
    pi = stripe_client.v1.payment_intents.create(
        params=cast(Any, {**charge_params(cus, pm), "description": "Phone usage, May",
                          "metadata": {"charge": "42"}, "setup_future_usage": "off_session",
                          "payment_method_types": ["card"], "statement_descriptor_suffix": "REBILL"}),
        options=on(ACCT_A, idempotency_key="charge:client_7:42"))
    assert pi.payment_method_types == ["card"]
    allowed = stripe_client.v1.payment_intents.create(
        params=cast(Any, {**charge_params(cus, pm), "allowed_payment_method_types": ["card"]}),
        options=on(ACCT_A))
    assert allowed.payment_method_types == ["card"]
    assert pi.status == "succeeded"
    assert (pi.description, pi.setup_future_usage, pi.statement_descriptor_suffix) == (
        "Phone usage, May", "off_session", "REBILL")
    assert pi.metadata.to_dict() == {"charge": "42"}
    retrieved = stripe_client.v1.payment_intents.retrieve(pi.id, options=on(ACCT_A))
    assert retrieved.description == "Phone usage, May"

    found = stripe_client.v1.customers.list(params={"email": "billing@acme.test", "limit": 3},
                                            options=on(ACCT_A))
    assert [c.id for c in found.data] == [cus.id]
    assert [p.id for p in stripe_client.v1.payment_methods.list(
        params={"customer": cus.id, "type": "card"}, options=on(ACCT_A)).data] == [pm.id]
    assert [p.id for p in stripe_client.v1.customers.payment_methods.list(
        cus.id, options=on(ACCT_A)).data] == [pm.id]
    saving = stripe_client.v1.payment_methods.create(params={"type": "card", "card": card()}, options=on(ACCT_A))
    stripe_client.v1.payment_intents.create(
        params={"amount": 500, "currency": "usd", "customer": cus.id, "payment_method": saving.id,
                "confirm": True, "setup_future_usage": "off_session"}, options=on(ACCT_A))
    assert stripe_client.v1.payment_methods.retrieve(saving.id, options=on(ACCT_A)).customer == cus.id
    stripe_client.v1.payment_methods.detach(saving.id, options=on(ACCT_A))
    detached = stripe_client.v1.payment_methods.detach(pm.id, options=on(ACCT_A))
    assert detached.customer is None
    assert stripe_client.v1.customers.payment_methods.list(cus.id, options=on(ACCT_A)).data == []


def test_customer_search_by_name_or_email_is_scoped_to_the_account(
        stripe_client: stripe.StripeClient) -> None:
    alice = stripe_client.v1.customers.create(
        params={"name": "Alice Smith", "email": "alice@smith.test", "metadata": {"crm_id": "c-1"}},
        options=on(ACCT_A))
    bob = stripe_client.v1.customers.create(params={"name": "Bob Stone", "email": "bob@Rocks.test"},
                                            options=on(ACCT_A))
    other = stripe_client.v1.customers.create(params={"name": "Alice Jones", "email": "alice@jones.test"},
                                              options=on(ACCT_B))

    def search(query: str, account: str | None = ACCT_A) -> list[str]:
        result = stripe_client.v1.customers.search(params={"query": query}, options=on(account))
        assert result.to_dict()["object"] == "search_result"
        assert result.has_more is False and result.next_page is None
        return sorted(c.id for c in result.data)

    assert search('name~"alice"') == [alice.id]
    assert search('name~"alice"', ACCT_B) == [other.id]
    assert search('name~"alice"', None) == []
    assert search('email~"ROCKS.TEST"') == [bob.id]
    assert search('email:"alice@smith.test"') == [alice.id]
    assert search('name:"alice"') == []
    assert search('name~"alice" OR email~"rocks"') == sorted([alice.id, bob.id])
    assert search('name~"alice" AND email~"rocks"') == []
    assert search('metadata["crm_id"]:"c-1"') == [alice.id]
    with pytest.raises(stripe.InvalidRequestError):
        search("name is alice")


def test_a_deleted_customer_is_retrieved_as_deleted_and_only_by_its_account(
        stripe_client: stripe.StripeClient) -> None:
    gone, _ = customer_with_card(stripe_client, ACCT_A, name="Gone Ltd")
    stripe_client.v1.customers.delete(gone.id, options=on(ACCT_A))

    # like Stripe: the customer is still there, as a stub that says it was deleted
    retrieved = stripe_client.v1.customers.retrieve(gone.id, options=on(ACCT_A))
    assert (retrieved.id, getattr(retrieved, "deleted", False)) == (gone.id, True)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.retrieve(gone.id, options=on(ACCT_B))
    # and it is in no list any more
    assert stripe_client.v1.customers.list(options=on(ACCT_A)).data == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.delete(gone.id, options=on(ACCT_A))


def test_connect_oauth_codes_work_once(stripe_client: stripe.StripeClient) -> None:
    token = stripe_client.oauth.token(params={"grant_type": "authorization_code", "code": "ac_agency_one"})

    assert token.stripe_user_id and re.fullmatch(r"acct_\w{16}", token.stripe_user_id)
    assert token.access_token and token.access_token.startswith("sk_test_")
    assert token.stripe_publishable_key and token.stripe_publishable_key.startswith("pk_test_")
    assert token.refresh_token and token.refresh_token.startswith("rt_")
    assert (token.token_type, token.scope, token.livemode) == ("bearer", "read_write", False)
    account = stripe_client.v1.accounts.retrieve(token.stripe_user_id)
    assert (account.id, account.object, account.type, account.charges_enabled) == (
        token.stripe_user_id, "account", "standard", True)

    for code in ("ac_agency_one", "not_a_code", ""):
        with pytest.raises(stripe.oauth_error.InvalidGrantError):
            stripe_client.oauth.token(params={"grant_type": "authorization_code", "code": code})
    other = stripe_client.oauth.token(params={"grant_type": "authorization_code", "code": "ac_agency_two"})
    refreshed = stripe_client.oauth.token(params={"grant_type": "refresh_token",
                                                  "refresh_token": token.refresh_token})
    assert refreshed.stripe_user_id == token.stripe_user_id
    assert other.stripe_user_id != token.stripe_user_id

    deauthorized = stripe_client.oauth.deauthorize(
        params={"client_id": "ca_rebill", "stripe_user_id": token.stripe_user_id})
    assert deauthorized.stripe_user_id == token.stripe_user_id
    with pytest.raises(stripe.PermissionError):
        stripe_client.v1.customers.list(options=on(token.stripe_user_id))
    with pytest.raises(stripe.oauth_error.InvalidClientError):
        stripe_client.oauth.deauthorize(params={"client_id": "ca_rebill", "stripe_user_id": "acct_unknown"})


def test_oauth_needs_the_platform_secret_key(localstripe: str) -> None:
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": "ac_x"}).encode()
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(urllib.request.Request(f"{localstripe}/oauth/token", data=form))
    assert excinfo.value.code == 401

    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": "ac_x",
                                   "client_secret": SECRET_KEY}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{localstripe}/oauth/token", data=form)) as response:
        assert json.load(response)["stripe_user_id"].startswith("acct_")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _authorize(localstripe: str, method: str, params: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of the local authorize page, without following its redirect."""
    encoded = urllib.parse.urlencode(params)
    request = (urllib.request.Request(f"{localstripe}/oauth/authorize?{encoded}") if method == "GET"
               else urllib.request.Request(f"{localstripe}/oauth/authorize", data=encoded.encode()))
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


AUTHORIZE = {"response_type": "code", "client_id": "ca_rebill", "scope": "read_write", "state": "s<1>&x",
             "redirect_uri": "http://acme.localhost:8000/agency/settings/stripe/callback/"}


def test_the_authorize_page_returns_to_the_callback_with_a_working_code(stripe_client: stripe.StripeClient,
                                                                         localstripe: str) -> None:
    # given the page Connect with Stripe opens
    status, headers, body = _authorize(localstripe, "GET", AUTHORIZE)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert ">Authorize</button>" in body and 'value="s&lt;1&gt;&amp;x"' in body  # the state, escaped

    # when the person authorizes
    status, headers, _ = _authorize(localstripe, "POST", {**AUTHORIZE, "decision": "authorize",
                                                          "business_name": "Acme Marketing"})

    # then they return to the callback with a code and the same state, and the code names a new account
    assert status == 302
    location = urllib.parse.urlsplit(headers["Location"])
    assert location._replace(query="").geturl() == AUTHORIZE["redirect_uri"]
    answer = dict(urllib.parse.parse_qsl(location.query))
    assert answer["state"] == AUTHORIZE["state"] and answer["code"].startswith("ac_")
    token = stripe_client.oauth.token(params={"grant_type": "authorization_code", "code": answer["code"]})
    account = stripe_client.v1.accounts.retrieve(str(token.stripe_user_id))
    assert account.business_profile is not None and account.business_profile.name == "Acme Marketing"


def test_the_authorize_page_can_be_cancelled_and_refuses_bad_requests(localstripe: str) -> None:
    status, headers, _ = _authorize(localstripe, "POST", {**AUTHORIZE, "decision": "deny"})
    assert status == 302
    answer = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers["Location"]).query))
    assert answer == {"error": "access_denied", "error_description": "The user denied your request",
                      "state": AUTHORIZE["state"]}

    for bad in ({"client_id": ""}, {"redirect_uri": "javascript:alert(1)"}, {"response_type": "token"}):
        status, headers, body = _authorize(localstripe, "GET", {**AUTHORIZE, **bad})
        assert status == 400 and "Location" not in headers and "Authorize</button>" not in body
        status, headers, _ = _authorize(localstripe, "POST", {**AUTHORIZE, **bad, "decision": "authorize"})
        assert status == 400 and "Location" not in headers


def test_pre_registered_accounts_can_be_retrieved(stripe_client: stripe.StripeClient,
                                                  localstripe: str) -> None:
    registered = register_account(localstripe, account_id=ACCT_A, name="Bright Agency",
                                  email="hi@bright.test")
    assert registered["id"] == ACCT_A

    account = stripe_client.v1.accounts.retrieve(ACCT_A)
    assert account.business_profile is not None and account.business_profile.name == "Bright Agency"
    assert account.email == "hi@bright.test"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.accounts.retrieve(ACCT_B)
    assert_missing(excinfo)


def test_reset_clears_objects_accounts_keys_and_the_record(stripe_client: stripe.StripeClient,
                                                           localstripe: str) -> None:
    cus, pm = customer_with_card(stripe_client, ACCT_A, name="Gone Soon")
    options = on(ACCT_A, idempotency_key="charge:client_1:99")
    stripe_client.v1.payment_intents.create(params=charge_params(cus, pm), options=options)
    register_account(localstripe, account_id=ACCT_B, name="B")
    assert recorded_requests(localstripe)

    reset(localstripe)

    assert recorded_requests(localstripe) == []
    assert stripe_client.v1.customers.list(options=on(ACCT_A)).data == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.accounts.retrieve(ACCT_B)
    cus, pm = customer_with_card(stripe_client, ACCT_A)
    again = stripe_client.v1.payment_intents.create(params=charge_params(cus, pm, 700), options=options)
    assert again.amount == 700
    assert again.last_response is not None and "Idempotent-Replayed" not in again.last_response.headers
