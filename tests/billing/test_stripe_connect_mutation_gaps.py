"""stripe_connect where the rest of the suite does not look: how customers are searched by name or email, and what a
real deauthorization leaves in the log."""

from __future__ import annotations

import logging

from devservices.localstripe_server import register_account
from stripe_connect.gateway import AgencyStripe
from stripe_connect.models import ConnectedAccount
from tests.billing.fixtures import ACCT_A, ACCT_B, event_payload, on, post_webhook, sign
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
