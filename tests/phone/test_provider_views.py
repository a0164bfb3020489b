"""Manage Client → phone provider: agency admins only, ids proven to be the caller's, tokens never shown."""

import pytest
from django.urls import reverse
from django_tenants.utils import tenant_context

from devservices.fake_twilio import request_log
from phone.models import ProviderStatus, SubAccountProvider
from tests.conftest import client_for
from tests.phone.helpers import agency_twilio_account, use_twilio

pytestmark = pytest.mark.django_db


def twilio_url(subaccount_id: int) -> str:
    return reverse("phone:provider-twilio", urlconf="rebill.urls_tenant", args=[subaccount_id])


def lc_phone_url(subaccount_id: int) -> str:
    return reverse("phone:provider-lc-phone", urlconf="rebill.urls_tenant", args=[subaccount_id])


def manage_url(subaccount_id: int) -> str:
    return reverse("subaccounts:manage", urlconf="rebill.urls_tenant", args=[subaccount_id])


def providers(agency) -> list:
    with tenant_context(agency):
        return list(SubAccountProvider.objects.values_list("subaccount_id", "provider", "twilio_account_sid"))


def test_admin_saves_twilio_credentials_and_the_page_shows_only_the_last_4(world, twilio):
    account_sid, auth_token = agency_twilio_account(twilio.url, "alpha-own")
    subaccount = world.a.subaccounts[0]
    client = client_for(world.a, world.a.admin)
    response = client.post(twilio_url(subaccount.pk), {"account_sid": account_sid, "auth_token": auth_token})
    assert response.status_code == 302 and response["Location"] == manage_url(subaccount.pk)
    page = client.get(manage_url(subaccount.pk)).content.decode()
    assert "Phone provider" in page and account_sid in page and f"…{auth_token[-4:]}" in page
    assert auth_token not in page
    with tenant_context(world.a.agency):
        stored = SubAccountProvider.objects.get(subaccount_id=subaccount.pk)
    assert stored.twilio_auth_token_encrypted not in page


def test_wrong_credentials_show_a_clear_error_and_change_nothing(world, twilio):
    account_sid, auth_token = agency_twilio_account(twilio.url, "alpha-own")
    wrong = "w" * 32
    response = client_for(world.a, world.a.admin).post(
        twilio_url(world.a.subaccounts[0].pk), {"account_sid": account_sid, "auth_token": wrong})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Twilio did not accept this Account SID and auth token" in page
    assert wrong not in page and auth_token not in page
    assert providers(world.a.agency) == []


@pytest.mark.parametrize(("data", "message"), [
    ({"account_sid": "AC123", "auth_token": "x" * 32}, "AC followed by 32"),
    ({"account_sid": "AC" + "a" * 32, "auth_token": "x" * 10}, "32 letters and digits"),
    ({"account_sid": "", "auth_token": ""}, "This field is required"),
])
def test_bad_form_input_is_refused_next_to_the_field_without_calling_twilio(world, twilio, data, message):
    response = client_for(world.a, world.a.admin).post(twilio_url(world.a.subaccounts[0].pk), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert request_log(twilio.url) == []
    assert providers(world.a.agency) == []


def test_admin_moves_a_twilio_sub_account_to_lc_phone(world, twilio):
    subaccount = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        use_twilio(twilio.url, subaccount=subaccount, admin=world.a.admin, name="alpha-own")
    client = client_for(world.a, world.a.admin)
    assert "Move to LC Phone" in client.get(manage_url(subaccount.pk)).content.decode()
    response = client.post(lc_phone_url(subaccount.pk))
    assert response.status_code == 302
    assert providers(world.a.agency) == [(subaccount.pk, "lc_phone", "")]


def test_the_provider_line_reads_as_a_sentence_and_last_read_restarts_with_a_new_account(world, twilio):
    subaccount = world.a.subaccounts[0]
    client = client_for(world.a, world.a.admin)
    assert client.post(lc_phone_url(subaccount.pk)).status_code == 302
    page = client.get(manage_url(subaccount.pk)).content.decode()
    assert "Uses <strong>LC Phone</strong>." in page and "Usage last read: not yet." in page

    # given usage of the LC Phone account was read once
    with tenant_context(world.a.agency):
        SubAccountProvider.objects.filter(subaccount=subaccount).update(last_pulled_at="2026-11-20T18:27:00Z")
    assert "Usage last read: 2026-11-20 18:27 UTC." in client.get(manage_url(subaccount.pk)).content.decode()

    # when the sub-account moves to the agency's own Twilio account
    account_sid, auth_token = agency_twilio_account(twilio.url, "alpha-own")
    assert client.post(twilio_url(subaccount.pk), {"account_sid": account_sid,
                                                   "auth_token": auth_token}).status_code == 302

    # then nothing of that account has been read yet, and the page says so
    page = client.get(manage_url(subaccount.pk)).content.decode()
    assert "Usage last read: not yet." in page and "18:27" not in page and "No usage read yet." in page
    assert f"Uses <strong>Twilio</strong> — the agency's own Twilio account {account_sid}" in page
    # (agency B's providers are untouched)
    assert providers(world.b.agency) == []


def test_credentials_invalid_is_visible_on_manage_client(world, twilio):
    subaccount = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=subaccount, admin=world.a.admin, name="alpha-own")
        SubAccountProvider.objects.filter(pk=provider.pk).update(status=ProviderStatus.CREDENTIALS_INVALID)
    page = client_for(world.a, world.a.admin).get(manage_url(subaccount.pk)).content.decode()
    assert "Credentials invalid" in page and "Twilio rejected these credentials" in page


@pytest.mark.parametrize("who", ["agency_user", "account_admin", "account_user"])
def test_people_other_than_agency_admins_get_404_and_change_nothing(world, twilio, who):
    account_sid, auth_token = agency_twilio_account(twilio.url, "alpha-own")
    user = {"agency_user": world.a.agency_user, "account_admin": world.a.account_admins[0],
            "account_user": world.a.account_users[0]}[who]
    client = client_for(world.a, user)
    subaccount_id = world.a.subaccounts[0].pk
    assert client.post(twilio_url(subaccount_id), {"account_sid": account_sid,
                                                   "auth_token": auth_token}).status_code == 404
    assert client.post(lc_phone_url(subaccount_id)).status_code == 404
    assert client.get(manage_url(subaccount_id)).status_code == 404
    assert providers(world.a.agency) == []
    assert request_log(twilio.url) == []


def test_another_agencys_admin_cannot_reach_this_agencys_providers(world, twilio):
    account_sid, auth_token = agency_twilio_account(twilio.url, "bravo-own")
    # given bravo's admin, signed in on bravo's domain, aims at alpha's domain with bravo's session
    bravo_client = client_for(world.b, world.b.admin)
    bravo_client.defaults["HTTP_HOST"] = world.a.domain
    response = bravo_client.post(twilio_url(world.a.subaccounts[0].pk),
                                 {"account_sid": account_sid, "auth_token": auth_token})
    # then alpha does not know that session: sign in first, nothing changed
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert providers(world.a.agency) == []


def test_a_sub_account_id_that_is_not_the_agencys_is_404(world, twilio):
    with tenant_context(world.a.agency):
        from subaccounts.models import SubAccount

        missing = SubAccount.objects.order_by("-pk").first().pk + 1000
    client = client_for(world.a, world.a.admin)
    assert client.post(lc_phone_url(missing)).status_code == 404
    assert client.post(twilio_url(missing), {"account_sid": "AC" + "a" * 32, "auth_token": "x" * 32}).status_code == 404
    assert request_log(twilio.url) == []
