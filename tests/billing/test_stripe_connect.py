"""Settings → Stripe: Connect OAuth (Standard) against the fake token endpoint, and disconnect."""

import hashlib
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import stripe
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from stripe_connect.models import ConnectedAccount
from stripe_connect.services import connect_state_check, connect_state_make
from tests.billing.fixtures import CLIENT_ID, on
from tests.conftest import client_for

NOT_STARTED_HERE = "This Stripe connection was not started here, or was already used. Start again."
CODE_REFUSED = "Stripe did not accept this connection (the code is invalid or was already used). Start again."
NOT_VALID = "This Stripe connection link is not valid. Start again from Settings → Stripe."
BAD_CALLBACK_SAYS = {"bad_code": CODE_REFUSED, "reused_code": CODE_REFUSED, "bad_state": NOT_VALID,
                     "reused_state": NOT_STARTED_HERE, "other_agency_state": NOT_STARTED_HERE, "no_state": NOT_VALID,
                     "denied": "Stripe did not connect: The user denied your request."}


def _start(client, localstripe) -> str:
    response = client.post("/agency/settings/stripe/connect/")
    assert response.status_code == 302
    authorize = urlparse(response["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == localstripe and authorize.path == "/oauth/authorize"
    query = parse_qs(authorize.query)
    assert set(query) == {"response_type", "scope", "state", "redirect_uri", "client_id"}
    assert query["client_id"] == [CLIENT_ID] and query["scope"] == ["read_write"]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["http://bravo.localhost/agency/settings/stripe/callback/"]
    return query["state"][0]


def _expected_account(code: str) -> str:
    return "acct_" + hashlib.sha256(code.encode()).hexdigest()[:16]  # what the fake names the account


def test_an_agency_admin_connects_and_disconnects_stripe(world, db, localstripe, raw_stripe):
    admin = client_for(world.b, world.b.admin)
    assert "Not connected" in admin.get("/agency/settings/stripe/").content.decode()

    # when Stripe sends the admin back with a good code and our state
    state = _start(admin, localstripe)
    response = admin.get("/agency/settings/stripe/callback/", {"code": "ac_bravo_1", "state": state}, follow=True)

    # then the account is connected and shown
    html = response.content.decode()
    assert "Your Stripe account is connected." in html and _expected_account("ac_bravo_1") in html
    connected = ConnectedAccount.objects.get(agency=world.b.agency)
    assert connected.account_id == _expected_account("ac_bravo_1")
    assert not ConnectedAccount.objects.filter(agency=world.a.agency).exists()

    # and Disconnect first asks for confirmation, which changes nothing
    confirm = admin.get("/agency/settings/stripe/disconnect/")
    assert confirm.status_code == 200 and "Disconnect Stripe?" in confirm.content.decode()
    assert 'method="post" action="/agency/settings/stripe/disconnect/"' in confirm.content.decode()
    assert ConnectedAccount.objects.filter(agency=world.b.agency).exists()
    raw_stripe.v1.customers.list(options=on(connected.account_id))  # still authorized

    # and when they confirm, Stripe revokes our access, the map forgets it and Connect is offered again
    response = admin.post("/agency/settings/stripe/disconnect/", follow=True)
    html = response.content.decode()
    assert "Stripe disconnected." in html and "Not connected" in html and "Connect with Stripe" in html
    assert not ConnectedAccount.objects.exists()
    with pytest.raises(stripe.PermissionError):
        raw_stripe.v1.customers.list(options=on(connected.account_id))


@pytest.mark.parametrize("case", ["bad_code", "reused_code", "bad_state", "reused_state", "other_agency_state",
                                  "no_state", "denied"])
def test_a_bad_callback_shows_a_clear_error_and_stores_nothing(world, db, localstripe, raw_stripe, case):
    admin = client_for(world.b, world.b.admin)
    code = "ac_bravo_2"
    if case == "reused_code":
        raw_stripe.oauth.token(params={"grant_type": "authorization_code", "code": code})
    state = _start(admin, localstripe)
    params = {"code": code, "state": state}
    if case == "bad_code":
        params["code"] = "not_a_code"
    elif case == "bad_state":
        params["state"] = state[:-4] + "abcd"
    elif case == "reused_state":
        admin.get("/agency/settings/stripe/callback/", {"code": "ac_bravo_first", "state": state})
        ConnectedAccount.objects.all().delete()
    elif case == "other_agency_state":
        other_admin = client_for(world.a, world.a.admin)
        other_admin.post("/agency/settings/stripe/connect/")
        params["state"] = parse_qs(urlparse(other_admin.post("/agency/settings/stripe/connect/")["Location"])
                                   .query)["state"][0]
    elif case == "no_state":
        del params["state"]
    elif case == "denied":
        params = {"error": "access_denied", "error_description": "The user denied your request", "state": state}

    response = admin.get("/agency/settings/stripe/callback/", params)

    assert response.status_code == 400
    assert f'<p class="errors" role="alert">{BAD_CALLBACK_SAYS[case]}</p>' in response.content.decode()
    assert not ConnectedAccount.objects.exists()


def test_a_callback_after_the_state_expired_says_it_took_too_long_and_stores_nothing(world, db, localstripe):
    admin = client_for(world.b, world.b.admin)
    state = _start(admin, localstripe)

    with time_machine.travel(timezone.now() + settings.STRIPE_CONNECT_STATE_MAX_AGE + timedelta(seconds=5)):
        response = admin.get("/agency/settings/stripe/callback/", {"code": "ac_bravo_late", "state": state})

    assert response.status_code == 400
    assert '<p class="errors" role="alert">The Stripe connection took too long. Start again.</p>' in \
        response.content.decode()
    assert not ConnectedAccount.objects.exists()


def test_a_state_is_only_good_for_the_admin_and_agency_it_was_made_for(world, db):
    # given a state made for agency B's admin
    state, nonce = connect_state_make(agency=world.b.agency, user=world.b.admin)

    # then it is good for them, with their nonce
    connect_state_check(state=state, agency=world.b.agency, user=world.b.admin, expected_nonce=nonce)
    # and refused for another person of the same agency, for another agency, and with another or no nonce
    for agency, user, expected_nonce in ((world.b.agency, world.b.agency_user, nonce),
                                         (world.a.agency, world.b.admin, nonce),
                                         (world.b.agency, world.b.admin, nonce + "x"),
                                         (world.b.agency, world.b.admin, None)):
        with pytest.raises(ValidationError) as refused:
            connect_state_check(state=state, agency=agency, user=user, expected_nonce=expected_nonce)
        assert refused.value.messages == [NOT_STARTED_HERE]


def test_only_agency_admins_reach_stripe_settings(world, db):
    for person in (world.b.agency_user, world.b.account_admins[0]):
        client = client_for(world.b, person)
        assert client.get("/agency/settings/stripe/").status_code == 404
        assert client.post("/agency/settings/stripe/connect/").status_code == 404
        assert client.get("/agency/settings/stripe/callback/", {"code": "ac_x", "state": "x"}).status_code == 404
        assert client.post("/agency/settings/stripe/disconnect/").status_code == 404
        assert client.get("/agency/settings/stripe/disconnect/").status_code == 404
    assert not ConnectedAccount.objects.exists()


def test_one_stripe_account_belongs_to_one_agency(world, db, localstripe):
    ConnectedAccount.objects.create(agency=world.a.agency, account_id=_expected_account("ac_shared"))
    admin = client_for(world.b, world.b.admin)
    state = _start(admin, localstripe)

    response = admin.get("/agency/settings/stripe/callback/", {"code": "ac_shared", "state": state})

    assert response.status_code == 400
    assert "already connected to another agency" in response.content.decode()
    assert not ConnectedAccount.objects.filter(agency=world.b.agency).exists()
