"""Setting a sub-account's provider: Twilio credentials checked with one call and stored encrypted,
LC Phone provisioned under the platform's master account, "Move to LC Phone"."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django_tenants.utils import tenant_context

from agencies.plans import PhoneProvider
from devservices.fake_twilio import account_status, request_log
from phone.crypto import secret_decrypt
from phone.models import ProviderStatus, SubAccountProvider
from phone.services import provider_set_lc_phone, provider_set_twilio
from subaccounts.models import AuditEntry
from tests.phone.helpers import agency_twilio_account, use_twilio

pytestmark = pytest.mark.django_db


def test_twilio_credentials_and_currency_are_checked_with_two_calls_and_stored_encrypted(world, twilio):
    # given an agency's own Twilio account
    account_sid, auth_token = agency_twilio_account(twilio.url, "alpha-own")
    with tenant_context(world.a.agency):
        subaccount = world.a.subaccounts[0]
        # when an agency admin saves its credentials
        provider = provider_set_twilio(subaccount=subaccount, account_sid=account_sid, auth_token=auth_token,
                                       by=world.a.admin)
        # then Twilio was asked for the account and its currency, and the token is encrypted at rest
        assert [r["path"] for r in request_log(twilio.url, account_sid)] == [
            f"/2010-04-01/Accounts/{account_sid}.json", f"/2010-04-01/Accounts/{account_sid}/Balance.json"
        ]
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM phone_subaccountprovider WHERE id = %s", [provider.pk])
            raw_row = " ".join(str(value) for value in cursor.fetchone())
        assert auth_token not in raw_row
        stored = SubAccountProvider.objects.get(subaccount=subaccount)
        assert stored.provider == PhoneProvider.TWILIO and stored.status == ProviderStatus.ACTIVE
        assert secret_decrypt(stored.twilio_auth_token_encrypted) == auth_token
        assert stored.twilio_auth_token_last4 == auth_token[-4:]
        change = AuditEntry.objects.get(subaccount=subaccount)
        assert change.actor == world.a.admin.email and change.after["twilio_account_sid"] == account_sid
        assert auth_token not in str(change.before) + str(change.after)


def test_wrong_twilio_credentials_say_so_and_change_nothing(world, twilio):
    account_sid, auth_token = agency_twilio_account(twilio.url, "alpha-own")
    wrong_token = auth_token[::-1]
    with tenant_context(world.a.agency):
        subaccount = world.a.subaccounts[0]
        with pytest.raises(ValidationError) as raised:
            provider_set_twilio(subaccount=subaccount, account_sid=account_sid, auth_token=wrong_token,
                                by=world.a.admin)
        assert "did not accept this Account SID and auth token" in str(raised.value)
        assert wrong_token not in str(raised.value)
        assert not SubAccountProvider.objects.filter(subaccount=subaccount).exists()
        assert not AuditEntry.objects.filter(subaccount=subaccount).exists()


@pytest.mark.parametrize(("account_sid", "auth_token", "field"), [
    ("AC123", "x" * 32, "account_sid"),
    ("SK" + "a" * 32, "x" * 32, "account_sid"),
    ("AC" + "a" * 32, "short", "auth_token"),
    ("AC" + "a" * 32, "x" * 31 + "!", "auth_token"),
])
def test_malformed_twilio_credentials_are_refused_without_calling_twilio(world, twilio, account_sid, auth_token,
                                                                          field):
    with tenant_context(world.a.agency):
        with pytest.raises(ValidationError) as raised:
            provider_set_twilio(subaccount=world.a.subaccounts[0], account_sid=account_sid, auth_token=auth_token,
                                by=world.a.admin)
        assert field in raised.value.message_dict
        assert request_log(twilio.url) == []
        assert not SubAccountProvider.objects.exists()


def test_only_agency_admins_change_providers(world, twilio):
    account_sid, auth_token = agency_twilio_account(twilio.url, "alpha-own")
    with tenant_context(world.a.agency):
        for user in (world.a.agency_user, world.a.account_admins[0]):
            with pytest.raises(PermissionError, match=r"^Only agency admins change a sub-account's phone provider\.$"):
                provider_set_twilio(subaccount=world.a.subaccounts[0], account_sid=account_sid,
                                    auth_token=auth_token, by=user)
            with pytest.raises(PermissionError, match=r"^Only agency admins change a sub-account's phone provider\.$"):
                provider_set_lc_phone(subaccount=world.a.subaccounts[0], by=user)
        assert not SubAccountProvider.objects.exists()


def test_lc_phone_is_a_twilio_subaccount_of_the_platform_master(world, twilio):
    with tenant_context(world.a.agency):
        provider = provider_set_lc_phone(subaccount=world.a.subaccounts[0], by=world.a.admin)
    assert provider.provider == PhoneProvider.LC_PHONE
    assert provider.lc_phone_account_sid.startswith("AC") and provider.twilio_auth_token_encrypted == ""
    assert account_status(twilio.url, provider.lc_phone_account_sid) == "active"
    [create] = [r for r in request_log(twilio.url) if r["path"] == "/2010-04-01/Accounts.json"]
    assert create["auth_user"] == twilio.master_sid


def test_move_to_lc_phone_drops_the_agency_token_and_a_return_reuses_the_same_subaccount(world, twilio):
    with tenant_context(world.a.agency):
        subaccount = world.a.subaccounts[0]
        first_lc = provider_set_lc_phone(subaccount=subaccount, by=world.a.admin).lc_phone_account_sid
        use_twilio(twilio.url, subaccount=subaccount, admin=world.a.admin, name="alpha-own")
        # when the admin moves the Twilio sub-account (back) to LC Phone
        moved = provider_set_lc_phone(subaccount=subaccount, by=world.a.admin)
        # then
        assert moved.provider == PhoneProvider.LC_PHONE and moved.lc_phone_account_sid == first_lc
        assert moved.twilio_account_sid == moved.twilio_auth_token_encrypted == moved.twilio_auth_token_last4 == ""
        creates = [r for r in request_log(twilio.url) if r["path"] == "/2010-04-01/Accounts.json"]
        assert len(creates) == 1
        actions = list(AuditEntry.objects.filter(subaccount=subaccount).order_by("pk")
                       .values_list("action", flat=True))
        assert actions == ["provider_set", "provider_set", "moved_to_lc_phone", "lc_phone_resumed"]


def test_lc_phone_without_master_credentials_changes_nothing(world, twilio, settings):
    settings.TWILIO_MASTER_AUTH_TOKEN = ""
    with tenant_context(world.a.agency):
        with pytest.raises(ValidationError) as refused:
            provider_set_lc_phone(subaccount=world.a.subaccounts[0], by=world.a.admin)
        assert refused.value.messages == [
            "LC Phone is not available on this platform right now; nothing was changed."]
        assert not SubAccountProvider.objects.exists()


def test_providers_of_one_agency_are_not_in_another(world, twilio):
    with tenant_context(world.a.agency):
        provider_set_lc_phone(subaccount=world.a.subaccounts[0], by=world.a.admin)
    with tenant_context(world.b.agency):
        assert not SubAccountProvider.objects.exists()
