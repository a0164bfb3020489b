"""stripe_connect where the rest of the suite does not look: how customers are searched by name or email, and what a
real deauthorization leaves in the log."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, tenant_context

from agencies.models import Agency
from devservices.localstripe_server import clear_recorded_requests, register_account
from stripe_connect.gateway import (
    AgencyStripe,
    StripeNotConfigured,
    connect_authorize_url,
    publishable_key,
    stripe_js_url,
)
from stripe_connect.models import ConnectedAccount, WebhookEvent
from stripe_connect.selectors import current_agency
from stripe_connect.services import stripe_account_connect, stripe_account_disconnect, stripe_account_record
from stripe_connect.webhooks import webhook_event_handle
from tests.billing.fixtures import (
    ACCT_A,
    ACCT_B,
    PLATFORM_WEBHOOK_SECRET,
    api_requests,
    card,
    customer_with_card,
    event_payload,
    on,
    post_webhook,
    sign,
)
from tests.billing.test_stripe_connect import _expected_account, _start
from tests.conftest import client_for


def test_a_name_of_three_letters_or_more_is_searched_as_part_of_a_name_and_a_shorter_one_exactly(
        localstripe, raw_stripe):
    # given customers "Zeta Corp" and "Ze" on agency A's account, and a "Zeta Corp" on agency B's
    for name in ("Zeta Corp", "Ze"):
        raw_stripe.v1.customers.create(params={"name": name}, options=on(ACCT_A))
    raw_stripe.v1.customers.create(params={"name": "Zeta Corp"}, options=on(ACCT_B))
    api = AgencyStripe(ACCT_A)

    # then three letters find every name containing them; two find only that exact name; only on A's account
    assert [c.name for c in api.customers_named("Zet")] == ["Zeta Corp"]
    assert [c.name for c in api.customers_named("Ze")] == ["Ze"]


def test_a_name_with_quotes_and_backslashes_is_searched_as_written(localstripe, raw_stripe):
    raw_stripe.v1.customers.create(params={"name": 'The "Zed" \\ Partners'}, options=on(ACCT_A))

    assert [c.name for c in AgencyStripe(ACCT_A).customers_named('"Zed" \\')] == ['The "Zed" \\ Partners']


def test_a_search_by_name_offers_at_most_ten_customers(localstripe, raw_stripe):
    for index in range(11):
        raw_stripe.v1.customers.create(params={"name": f"Acme branch {index}"}, options=on(ACCT_A))

    assert len(AgencyStripe(ACCT_A).customers_named("Acme")) == 10


def test_a_search_by_email_offers_at_most_ten_customers(localstripe, raw_stripe):
    for index in range(11):
        raw_stripe.v1.customers.create(params={"name": f"Branch {index}", "email": "pay@acme.test"},
                                       options=on(ACCT_A))

    assert len(AgencyStripe(ACCT_A).customers_with_email("pay@acme.test")) == 10


def test_a_real_deauthorization_is_logged_with_the_account_it_disconnected(world, connected, localstripe,
                                                                           raw_stripe, caplog):
    # given agency A revoked our access at Stripe
    register_account(localstripe, account_id=ACCT_A, name="Alpha")
    raw_stripe.oauth.deauthorize(params={"client_id": "ca_rebill", "stripe_user_id": ACCT_A})
    payload = event_payload(event_id="evt_deauth_logged", event_type="account.application.deauthorized",
                            obj={"id": "ca_rebill", "object": "application"}, account=ACCT_A)

    # when Stripe tells us
    with caplog.at_level(logging.INFO, logger="stripe_connect.webhooks"):
        answer = post_webhook(payload, sign(payload))
    assert (answer.status_code, answer.content) == (200, b"ok")

    # then agency A is disconnected, and the log says which account and why
    assert not ConnectedAccount.objects.filter(account_id=ACCT_A).exists()
    assert [r.getMessage() for r in caplog.records if r.name == "stripe_connect.webhooks"] == [
        f"Stripe account {ACCT_A} deauthorized our platform; disconnected"]


def test_each_refused_event_is_answered_400_with_the_reason(world, connected, caplog):
    unknown = "acct_1NobodyWeKnow0000"
    not_json = b"not an event"
    platform_event = event_payload(event_id="evt_platform", event_type="customer.updated", obj={"id": "cus_x"},
                                   account=None)
    stranger = event_payload(event_id="evt_stranger", event_type="customer.updated", obj={"id": "cus_x"},
                             account=unknown)

    with caplog.at_level(logging.WARNING, logger="stripe_connect.webhooks"):
        answers = [post_webhook(payload, signature) for payload, signature in (
            (stranger, sign(stranger, secret="whsec_someone_else")), (not_json, sign(not_json)),
            (platform_event, sign(platform_event)), (stranger, sign(stranger)))]

    assert [(a.status_code, a.content.decode()) for a in answers[1:]] == [
        (400, "Not a Stripe event"),
        (400, "Not a connected account's event: the platform account's events have their own endpoint"),
        (400, f"Unknown account {unknown}")]
    assert answers[0].status_code == 400
    assert answers[0].content.decode().startswith("Bad signature: No signatures found matching the expected signature")
    assert [r.getMessage() for r in caplog.records if r.name == "stripe_connect.webhooks"] == [
        f"Stripe event evt_stranger (customer.updated) for unknown account {unknown} rejected"]


def test_the_stripe_settings_page_shows_no_error_until_something_fails(world, db):
    page = client_for(world.b, world.b.admin).get("/agency/settings/stripe/")

    assert page.status_code == 200
    assert "Not connected" in page.content.decode() and 'class="errors"' not in page.content.decode()


def test_a_refund_is_made_on_the_agencys_account_for_the_amount_asked_with_our_key(localstripe, raw_stripe):
    # given a 15.00 USD charge on agency A's account
    cus, pm = customer_with_card(raw_stripe, ACCT_A)
    api = AgencyStripe(ACCT_A)
    intent = api.payment_intent_create_off_session(
        amount=Decimal("15.00"), currency="usd", customer_id=cus.id, payment_method_id=pm.id, metadata={},
        idempotency_key="charge:alpha:1")
    clear_recorded_requests(localstripe)

    # when 5.25 of it is refunded
    refund = api.refund_create(payment_intent_id=intent.id, amount=Decimal("5.25"), currency="usd",
                               metadata={"rebill_refund": "1"}, idempotency_key="refund:alpha:1")

    # then Stripe holds a refund of 525 cents of that charge, labelled with our row, asked for with our key
    stored = raw_stripe.v1.refunds.retrieve(refund.id, options=on(ACCT_A))
    assert (stored.payment_intent, stored.amount, stored.metadata.to_dict()) == (
        intent.id, 525, {"rebill_refund": "1"})
    assert [(r["method"], r["path"], r["stripe_account"], r["idempotency_key"]) for r in api_requests(localstripe)
            if r["method"] == "POST"] == [("POST", "/v1/refunds", ACCT_A, "refund:alpha:1")]


def test_a_payment_intent_is_found_by_our_metadata_and_two_with_the_same_are_an_error(localstripe, raw_stripe):
    # given charges on agency A's account labelled with our charge rows: one 7, three 8s
    cus, pm = customer_with_card(raw_stripe, ACCT_A)
    api = AgencyStripe(ACCT_A)

    def charge(row: str, key: str) -> str:
        return api.payment_intent_create_off_session(
            amount=Decimal("1.00"), currency="usd", customer_id=cus.id, payment_method_id=pm.id,
            metadata={"rebill_charge": row}, idempotency_key=key).id

    seven = charge("7", "charge:alpha:7")
    quoted = charge('7 "b\\', "charge:alpha:7q")
    for key in ("charge:alpha:8a", "charge:alpha:8b", "charge:alpha:8c"):
        charge("8", key)

    # then row 7's is found (and a value with a quote and a backslash is matched as written), row 9 has none, and
    # several for row 8 are refused rather than picking one (the search stops at the second)
    found = api.payment_intent_find(metadata_key="rebill_charge", value="7")
    assert found is not None and found.id == seven
    found = api.payment_intent_find(metadata_key="rebill_charge", value='7 "b\\')
    assert found is not None and found.id == quoted
    assert api.payment_intent_find(metadata_key="rebill_charge", value="9") is None
    with pytest.raises(ValueError) as refused:
        api.payment_intent_find(metadata_key="rebill_charge", value="8")
    assert str(refused.value) == "2 PaymentIntents carry rebill_charge=8"


def test_an_off_session_charge_is_asked_of_stripe_exactly_as_documented(localstripe, raw_stripe):
    # given a customer with a card on agency A's account
    cus, pm = customer_with_card(raw_stripe, ACCT_A)

    # when our module charges 15.00 USD, the currency written in capitals
    intent = AgencyStripe(ACCT_A).payment_intent_create_off_session(
        amount=Decimal("15.00"), currency="USD", customer_id=cus.id, payment_method_id=pm.id,
        metadata={"rebill_charge": "42"}, idempotency_key="charge:alpha:42")

    # then Stripe was asked for 1500 in lowercase "usd" (as its API documents), charged at once with the card holder
    # away: the same key with exactly these parameters replays the charge (any other parameter is refused)
    assert (intent.amount, intent.currency, intent.status) == (1500, "usd", "succeeded")
    replay = raw_stripe.v1.payment_intents.create(params={
        "amount": 1500, "currency": "usd", "customer": cus.id, "payment_method": pm.id, "off_session": True,
        "confirm": True, "metadata": {"rebill_charge": "42"}},
        options={"stripe_account": ACCT_A, "idempotency_key": "charge:alpha:42"})
    assert replay.id == intent.id


def test_a_search_by_name_or_email_offers_no_more_customers_than_asked(localstripe, raw_stripe):
    for index in range(4):
        raw_stripe.v1.customers.create(params={"name": f"Acme branch {index}", "email": "pay@acme.test"},
                                       options=on(ACCT_A))
    api = AgencyStripe(ACCT_A)

    assert (len(api.customers_named("Acme", limit=3)), len(api.customers_with_email("pay@acme.test", limit=3))) == (
        3, 3)


def test_disconnect_asks_first_naming_the_account_and_with_none_connected_goes_back_to_settings(world, connected):
    ConnectedAccount.objects.filter(pk=connected.b.pk).update(display_name="Bravo Ltd")
    admin = client_for(world.b, world.b.admin)

    confirm = admin.get("/agency/settings/stripe/disconnect/")

    html = confirm.content.decode()
    assert confirm.status_code == 200 and 'name="csrfmiddlewaretoken"' in html
    assert f"Stripe account <code>{ACCT_B}</code> (Bravo Ltd) will no longer be connected." in html
    ConnectedAccount.objects.filter(pk=connected.b.pk).delete()
    gone = admin.get("/agency/settings/stripe/disconnect/")
    assert (gone.status_code, gone["Location"]) == (302, "/agency/settings/stripe/")


def test_confirming_a_disconnect_when_nothing_is_connected_any_more_says_so(world, db, localstripe):
    # given agency B's admin confirms a disconnect another tab already made
    page = client_for(world.b, world.b.admin).post("/agency/settings/stripe/disconnect/")

    assert page.status_code == 400
    assert '<p class="errors" role="alert">No Stripe account is connected.</p>' in page.content.decode()


def test_an_account_stripe_already_disconnected_is_forgotten_here_too_and_logged(world, connected, caplog):
    # given agency B's account no longer reachable by us at Stripe (disconnected from its Stripe dashboard)
    admin = client_for(world.b, world.b.admin)

    # when its admin disconnects it here
    with caplog.at_level(logging.INFO, logger="stripe_connect.services"):
        page = admin.post("/agency/settings/stripe/disconnect/", follow=True)

    # then it is forgotten, agency A's stays, and the log says Stripe had already let it go
    assert '<p class="flash success" role="status">Stripe disconnected.</p>' in page.content.decode()
    assert list(ConnectedAccount.objects.values_list("account_id", flat=True)) == [ACCT_A]
    assert [r.getMessage() for r in caplog.records if r.name == "stripe_connect.services"] == [
        f"Stripe account {ACCT_B} was already deauthorized"]


def test_only_an_agency_admin_connects_or_disconnects_stripe(world, connected):
    with pytest.raises(PermissionError, match=r"^Only agency admins disconnect Stripe\.$"):
        stripe_account_disconnect(agency=world.b.agency, by=world.b.agency_user)
    ConnectedAccount.objects.filter(agency=world.a.agency).delete()
    with pytest.raises(PermissionError, match=r"^Only agency admins connect Stripe\.$"):
        stripe_account_connect(agency=world.a.agency, code="ac_alpha_staff", by=world.a.agency_user)

    assert list(ConnectedAccount.objects.values_list("agency", "account_id")) == [(world.b.agency.pk, ACCT_B)]


def test_an_agency_already_connected_is_asked_to_disconnect_first(world, connected):
    with pytest.raises(ValidationError) as refused:
        stripe_account_connect(agency=world.b.agency, code="ac_bravo_second", by=world.b.admin)

    assert refused.value.messages == ["A Stripe account is already connected. Disconnect it first."]
    assert list(ConnectedAccount.objects.filter(agency=world.b.agency).values_list("account_id", flat=True)) == [
        ACCT_B]


def test_a_connected_account_is_named_after_its_business_else_its_email(world, db, localstripe):
    named = []
    for code, name, email in (("ac_bravo_named", "Bravo Ltd", "pay@bravo.test"),
                              ("ac_bravo_email", "", "pay@bravo.test"), ("ac_bravo_bare", "", "")):
        register_account(localstripe, account_id=_expected_account(code), name=name, email=email)
        connected = stripe_account_connect(agency=world.b.agency, code=code, by=world.b.admin)
        named.append((connected.account_id, connected.display_name, connected.livemode, connected.connected_by))
        connected.delete()

    assert named == [(_expected_account("ac_bravo_named"), "Bravo Ltd", False, "admin@bravo.test"),
                     (_expected_account("ac_bravo_email"), "pay@bravo.test", False, "admin@bravo.test"),
                     (_expected_account("ac_bravo_bare"), "", False, "admin@bravo.test")]


def test_an_account_another_agency_holds_is_refused_saying_so(world, connected):
    ConnectedAccount.objects.filter(agency=world.b.agency).delete()
    ConnectedAccount.objects.filter(agency=world.a.agency).update(account_id=_expected_account("ac_shared"))

    with pytest.raises(ValidationError) as refused:
        stripe_account_connect(agency=world.b.agency, code="ac_shared", by=world.b.admin)

    assert refused.value.messages == ["This Stripe account is already connected to another agency."]
    assert not ConnectedAccount.objects.filter(agency=world.b.agency).exists()


def _waits_on_a_lock(pid: int, *, statement: str = "") -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction the activity is read once
        cursor.execute("SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = %s", [pid])
        waiting, query = cursor.fetchone()
        return waiting == "Lock" and query.startswith(statement)


def test_a_second_connection_of_an_agency_made_at_the_same_moment_is_refused(world, db, localstripe):
    # given another request of agency B's admin recording a connection, not committed yet
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        our_pid = cursor.fetchone()[0]
    recording, done = threading.Event(), threading.Event()

    def other_request() -> None:
        try:
            with transaction.atomic():
                ConnectedAccount.objects.create(agency=world.b.agency, account_id="acct_1RebillOtherTab000")
                recording.set()
                deadline = time.monotonic() + 30
                while not _waits_on_a_lock(our_pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
            done.wait(timeout=30)
            ConnectedAccount.objects.filter(account_id="acct_1RebillOtherTab000").delete()
        finally:
            connection.close()

    thread = threading.Thread(target=other_request)
    thread.start()
    try:
        assert recording.wait(timeout=30)
        # when this one records its own meanwhile
        with pytest.raises(ValidationError) as refused:
            stripe_account_connect(agency=world.b.agency, code="ac_bravo_tab_two", by=world.b.admin)
    finally:
        done.set()
        thread.join(timeout=30)

    # then it is told the agency is connected already (by the other request)
    assert refused.value.messages == ["This Stripe account is already connected."]
    assert not ConnectedAccount.objects.filter(account_id=_expected_account("ac_bravo_tab_two")).exists()


def test_a_code_stripe_refuses_is_logged_with_the_agency_and_stripes_reason(world, db, localstripe, caplog):
    with caplog.at_level(logging.INFO, logger="stripe_connect.services"), pytest.raises(ValidationError):
        stripe_account_connect(agency=world.b.agency, code="not_a_code", by=world.b.admin)

    assert [r.getMessage() for r in caplog.records if r.name == "stripe_connect.services"] == [
        f"Stripe OAuth code refused for {world.b.agency.schema_name}: Authorization code does not exist: not_a_code"]


def test_an_account_connected_elsewhere_is_recorded_once_per_agency(world, db):
    first = stripe_account_record(agency=world.a.agency, account_id=ACCT_A, display_name="Alpha")
    again = stripe_account_record(agency=world.a.agency, account_id="acct_1RebillAlphaAgain", display_name="Alpha 2")

    assert again.pk == first.pk
    assert list(ConnectedAccount.objects.values_list("agency", "account_id", "display_name")) == [
        (world.a.agency.pk, "acct_1RebillAlphaAgain", "Alpha 2")]
    assert stripe_account_record(agency=world.b.agency, account_id=ACCT_B).display_name == ""


PLATFORM_ENDPOINT = "/stripe/platform-webhook/"


def test_the_platform_endpoint_stores_and_handles_the_platform_accounts_own_events(world, connected, raw_stripe):
    # given a payment on the platform's own account that is no agency's recharge
    cus, pm = customer_with_card(raw_stripe, None)
    intent = raw_stripe.v1.payment_intents.create(params={
        "amount": 500, "currency": "usd", "customer": cus.id, "payment_method": pm.id, "confirm": True})
    handled = event_payload(event_id="evt_platform_paid", event_type="payment_intent.succeeded",
                            obj={"id": intent.id}, account=None)
    unhandled = event_payload(event_id="evt_platform_customer", event_type="customer.updated",
                              obj={"id": cus.id}, account=None)

    # when Stripe sends its event, and one of a kind the platform does not handle
    answers = [post_webhook(p, sign(p, secret=PLATFORM_WEBHOOK_SECRET), path=PLATFORM_ENDPOINT)
               for p in (handled, unhandled)]

    # then both are stored once, the platform's, handled (its PaymentIntent read back from Stripe) or ignored
    assert [(a.status_code, a.content) for a in answers] == [(200, b"ok"), (200, b"ok")]
    assert list(WebhookEvent.objects.order_by("event_id").values_list(
        "event_id", "event_type", "account_id", "agency", "status", "attempts", "last_error")) == [
        ("evt_platform_customer", "customer.updated", "", None, WebhookEvent.Status.IGNORED, 1, ""),
        ("evt_platform_paid", "payment_intent.succeeded", "", None, WebhookEvent.Status.HANDLED, 1, "")]
    assert all(timezone.now() - at < timedelta(minutes=1) for at in WebhookEvent.objects.values_list(
        "handled_at", flat=True))
    assert WebhookEvent.objects.get(event_id="evt_platform_paid").payload["data"]["object"] == {"id": intent.id}


def test_an_event_without_a_signature_header_is_refused_saying_so(world, connected):
    payload = event_payload(event_id="evt_unsigned", event_type="customer.updated", obj={"id": "cus_x"},
                            account=ACCT_A)

    answer = Client(HTTP_HOST="localhost").post("/stripe/webhook/", data=payload, content_type="application/json")

    assert answer.status_code == 400
    assert answer.content.decode().startswith("Bad signature: No Stripe-Signature header value was provided.")
    assert not WebhookEvent.objects.exists()


def test_the_platform_endpoint_refuses_with_the_reason_what_is_not_its_own(world, connected):
    connect_event = event_payload(event_id="evt_connect", event_type="setup_intent.succeeded",
                                  obj={"id": "seti_x"}, account=ACCT_A)
    platform_event = event_payload(event_id="evt_platform", event_type="setup_intent.succeeded",
                                   obj={"id": "seti_x"}, account=None)
    not_json = b"not an event"

    answers = [post_webhook(payload, signature, path=PLATFORM_ENDPOINT) for payload, signature in (
        (connect_event, sign(connect_event, secret=PLATFORM_WEBHOOK_SECRET)),
        (not_json, sign(not_json, secret=PLATFORM_WEBHOOK_SECRET)),
        (platform_event, sign(platform_event)))]

    assert [(a.status_code, a.content.decode()) for a in answers[:2]] == [
        (400, "A connected account's event: those go to the Connect endpoint"), (400, "Not a Stripe event")]
    assert answers[2].status_code == 400
    assert answers[2].content.decode().startswith("Bad signature: No signatures found matching the expected")
    assert not WebhookEvent.objects.exists()


def test_the_callback_says_what_happened_when_stripe_sends_no_code_or_no_reason(world, db, localstripe, caplog):
    admin = client_for(world.b, world.b.admin)
    callback = "/agency/settings/stripe/callback/"

    # when the admin cancels at Stripe (no description), comes back without a code, then connects
    cancelled = admin.get(callback, {"error": "access_denied", "state": _start(admin, localstripe)})
    with caplog.at_level(logging.INFO, logger="stripe_connect.services"):
        no_code = admin.get(callback, {"state": _start(admin, localstripe)})
    connected = admin.get(callback, {"code": "ac_bravo_ok", "state": _start(admin, localstripe)}, follow=True)

    # then each page says so
    assert cancelled.status_code == no_code.status_code == 400
    assert '<p class="errors" role="alert">Stripe did not connect: cancelled.</p>' in cancelled.content.decode()
    assert ('<p class="errors" role="alert">Stripe did not accept this connection (the code is invalid or was already '
            'used). Start again.</p>') in no_code.content.decode()
    assert [r.getMessage() for r in caplog.records if r.name == "stripe_connect.services"] == [
        f"Stripe OAuth code refused for {world.b.agency.schema_name}: Authorization code does not exist: "]
    assert ('<p class="flash success" role="status">Your Stripe account is connected.</p>'
            in connected.content.decode())


def test_stripe_js_comes_from_its_own_setting_when_one_is_given(localstripe, settings):
    settings.STRIPE_JS_URL = "https://js.example.test/v3/"

    assert stripe_js_url() == "https://js.example.test/v3/"


def test_all_of_a_customers_cards_are_read_up_to_stripes_largest_page(localstripe, raw_stripe):
    # given a customer on agency A's account with 101 cards
    cus, _ = customer_with_card(raw_stripe, ACCT_A)
    for _ in range(100):
        pm = raw_stripe.v1.payment_methods.create(params={"type": "card", "card": card()}, options=on(ACCT_A))
        raw_stripe.v1.payment_methods.attach(pm.id, params={"customer": cus.id}, options=on(ACCT_A))

    # then one read gives 100 of them, the most Stripe sends in one page
    assert len(AgencyStripe(ACCT_A).customer_cards(cus.id)) == 100


def test_an_event_whose_handling_fails_is_kept_failed_with_its_error_and_logged_for_stripes_retry(
        world, connected, caplog):
    # given an event about a card Stripe cannot find
    payload = event_payload(event_id="evt_fails", event_type="payment_method.attached", obj={"id": "pm_gone"},
                            account=ACCT_A)

    # when it arrives
    with caplog.at_level(logging.ERROR, logger="stripe_connect.webhooks"):
        answer = post_webhook(payload, sign(payload), raise_request_exception=False)

    # then Stripe is answered 500 (it retries), and the inbox keeps the event failed with Stripe's error
    assert answer.status_code == 500
    inbox = WebhookEvent.objects.get(event_id="evt_fails")
    assert (inbox.status, inbox.attempts, inbox.handled_at) == (WebhookEvent.Status.FAILED, 1, None)
    assert inbox.last_error.startswith("InvalidRequestError(message='Not Found', ")
    assert "code='resource_missing', http_status=404" in inbox.last_error
    assert [r.getMessage() for r in caplog.records if r.name == "stripe_connect.webhooks"] == [
        f"Stripe event {inbox.pk} failed; Stripe will retry it"]


def test_a_worker_that_gave_up_waiting_for_an_event_leaves_it_handled_by_the_worker_it_waited_for(world, db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        our_pid = cursor.fetchone()[0]
    inbox_ids: list[int] = []
    handling, done = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            inbox_ids.append(WebhookEvent.objects.create(event_id="evt_raced", event_type="customer.updated",
                                                         payload={}).pk)
            with transaction.atomic():
                WebhookEvent.objects.select_for_update().filter(pk=inbox_ids[0]).update(
                    status=WebhookEvent.Status.HANDLED)
                handling.set()
                # it finishes just as ours, having given up waiting, goes to mark the event failed
                deadline = time.monotonic() + 30
                while not _waits_on_a_lock(our_pid, statement="UPDATE") and time.monotonic() < deadline:
                    time.sleep(0.02)
            done.wait(timeout=30)
            WebhookEvent.objects.filter(pk=inbox_ids[0]).delete()
        finally:
            connection.close()

    # given another worker handling an event
    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert handling.wait(timeout=30)
        with transaction.atomic():  # rolled back below, so the other worker may then delete its event
            # when our worker gives up waiting for it (its lock wait cut short)
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '1s'")
            with pytest.raises(OperationalError):
                webhook_event_handle(inbox_id=inbox_ids[0])
            # then the event stays handled: our failure does not mark it failed for Stripe to send again
            assert WebhookEvent.objects.filter(pk=inbox_ids[0]).values_list("status", "last_error").get() == (
                WebhookEvent.Status.HANDLED, "")
            transaction.set_rollback(True)
    finally:
        done.set()
        thread.join(timeout=30)


def test_base_addresses_written_with_a_trailing_slash_are_used_without_it(localstripe, settings):
    settings.STRIPE_API_BASE = settings.STRIPE_CONNECT_BASE = f"{localstripe}/"
    api = AgencyStripe(ACCT_A)

    created = api.customer_create(name="Slash Ltd", email="", metadata={}, idempotency_key="customer:slash:1")

    assert api.customer_retrieve(created.id).name == "Slash Ltd"
    assert connect_authorize_url(state="s", redirect_uri="http://bravo.localhost/cb").startswith(
        f"{localstripe}/oauth/authorize?")
    assert stripe_js_url() == f"{localstripe}/js.stripe.com/v3/"
    settings.STRIPE_API_BASE = "https://api.stripe.com/"
    assert stripe_js_url() == "https://js.stripe.com/v3/"


def test_stripe_refuses_to_run_without_its_settings_or_a_key_or_an_account_saying_which(localstripe, settings):
    settings.STRIPE_PUBLISHABLE_KEY = ""
    with pytest.raises(StripeNotConfigured, match=r"^STRIPE_PUBLISHABLE_KEY is not set; Stripe cannot be used\.$"):
        publishable_key()
    with pytest.raises(ValueError, match=r"^Every Stripe write needs an idempotency key derived from our own row id$"):
        AgencyStripe(ACCT_A).customer_create(name="x", email="", metadata={}, idempotency_key="")
    with pytest.raises(ValueError, match=r"^Not a Stripe account id: 'cus_123'$"):
        AgencyStripe("cus_123")


def test_no_agency_is_current_in_the_platforms_schema_nor_outside_every_schema(world, db):
    with tenant_context(world.a.agency):
        assert current_agency() == world.a.agency
    with tenant_context(Agency.objects.get(schema_name=get_public_schema_name())), pytest.raises(RuntimeError):
        current_agency()
    connection.set_schema_to_public()
    with pytest.raises(RuntimeError):
        current_agency()
