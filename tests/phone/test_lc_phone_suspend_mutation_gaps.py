"""phone/services/providers.py's suspension of the LC Phone subaccount a sub-account left, where the rest of the suite
does not look: what its audit entry records, a late suspension of a sub-account back on LC Phone asking nothing
of Twilio, and a move back refused when LC Phone cannot resume the subaccount."""

import logging

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from devservices.fake_twilio import account_status, clear_request_log, inject_fault, request_log
from phone.models import SubAccountProvider
from phone.services import provider_lc_phone_suspend, provider_set_lc_phone
from subaccounts.models import AuditEntry
from tests.phone.helpers import use_lc_phone, use_twilio

pytestmark = pytest.mark.django_db


def test_the_suspension_is_audited_with_the_subaccount_and_its_status_before_and_after(world, twilio):
    with tenant_context(world.a.agency):
        # given a client that left LC Phone for its agency's own Twilio account
        client = world.a.subaccounts[0]
        lc_sid = use_lc_phone(subaccount=client, admin=world.a.admin).lc_phone_account_sid
        moved, _ = use_twilio(twilio.url, subaccount=client, admin=world.a.admin, name="own")
        # when the platform suspends the LC Phone subaccount it left
        assert provider_lc_phone_suspend(provider_id=moved.pk) is True
        # then it is suspended, and the audit log says by whom, which subaccount, and its status before and after
        [entry] = AuditEntry.objects.filter(subaccount=client, action=AuditEntry.Action.LC_PHONE_SUSPENDED)
        assert (entry.actor, entry.before, entry.after) == (
            "platform", {"lc_phone_account_sid": lc_sid, "status": "active"},
            {"lc_phone_account_sid": lc_sid, "status": "suspended"})
    assert account_status(twilio.url, lc_sid) == "suspended"
    with tenant_context(world.b.agency):
        assert not AuditEntry.objects.exists()


def test_a_late_suspension_of_a_sub_account_back_on_lc_phone_asks_nothing_of_twilio(world, twilio):
    with tenant_context(world.a.agency):
        # given a client that moved to its own Twilio account and back to LC Phone before the suspension ran
        client = world.a.subaccounts[0]
        lc_sid = use_lc_phone(subaccount=client, admin=world.a.admin).lc_phone_account_sid
        use_twilio(twilio.url, subaccount=client, admin=world.a.admin, name="own")
        back = provider_set_lc_phone(subaccount=client, by=world.a.admin)
        clear_request_log(twilio.url)
        # when the late suspension runs: nothing to do
        assert provider_lc_phone_suspend(provider_id=back.pk) is False
        assert not AuditEntry.objects.filter(subaccount=client, action=AuditEntry.Action.LC_PHONE_SUSPENDED).exists()
    # then Twilio was not called at all, and the subaccount is active
    assert request_log(twilio.url) == []
    assert account_status(twilio.url, lc_sid) == "active"


def test_moving_back_while_lc_phone_cannot_resume_the_subaccount_changes_nothing(world, twilio, caplog):
    with tenant_context(world.a.agency):
        # given a client that left LC Phone for its own Twilio account, its LC Phone subaccount suspended
        client = world.a.subaccounts[0]
        lc_sid = use_lc_phone(subaccount=client, admin=world.a.admin).lc_phone_account_sid
        moved, _ = use_twilio(twilio.url, subaccount=client, admin=world.a.admin, name="own")
        assert provider_lc_phone_suspend(provider_id=moved.pk) is True
        # when the agency admin moves it back while LC Phone answers 500 to each of the 4 attempts the settings allow
        inject_fault(twilio.url, lc_sid, "status", count=4, status=500)
        with caplog.at_level(logging.ERROR, logger="phone.services.providers"), \
                pytest.raises(ValidationError) as refused:
            provider_set_lc_phone(subaccount=client, by=world.a.admin)
        # then the admin is told to try again later, and the client stays on its own Twilio account
        assert refused.value.messages == [
            "LC Phone could not be set up right now; nothing was changed. Try again later."]
        assert SubAccountProvider.objects.get(subaccount=client).provider == "twilio"
    assert account_status(twilio.url, lc_sid) == "suspended"
    # and the platform's log names the subaccount, the status asked for and Twilio's error
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert error.startswith(f"Setting LC Phone subaccount {lc_sid} active failed: ") and "500" in error
