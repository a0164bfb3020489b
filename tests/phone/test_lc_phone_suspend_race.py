"""A sub-account moved back to LC Phone while the platform is suspending the LC Phone subaccount it had left: the
suspension resumes it again and records nothing (on committed rows and two connections, as the job and the
agency admin's request run)."""

from collections.abc import Iterator

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from devservices.fake_twilio import account_status, clear_request_log, inject_fault, request_log
from phone.models import RetiredAccount, SubAccountProvider, UsageDelta, UsageLine
from phone.services import provider_lc_phone_resume, provider_lc_phone_suspend, provider_set_lc_phone
from phone.services.providers import _lc_phone_subaccount_set_status
from phone.usage_client import UsageFetchError
from phoneregistry.models import TwilioAccountClaim, UsageAlert
from subaccounts.models import AuditEntry
from tests.phone.helpers import logged_by_providers, use_lc_phone, use_twilio, while_lc_phone_is_called
from tests.queued_jobs import queued

RESUME_TASK = "phone.tasks.lc_phone_subaccount_resume"
SUSPEND_TASK = "phone.tasks.lc_phone_subaccount_suspend"


@pytest.fixture
def committed(world, django_db_blocker) -> Iterator[None]:
    with django_db_blocker.unblock():
        try:
            yield
        finally:
            with tenant_context(world.a.agency):
                UsageDelta.objects.all().delete()
                UsageLine.objects.all().delete()
                RetiredAccount.objects.all().delete()
                AuditEntry.objects.all().delete()
                SubAccountProvider.objects.all().delete()
            connection.set_schema_to_public()
            TwilioAccountClaim.objects.all().delete()
            UsageAlert.objects.all().delete()


def test_a_move_back_during_the_suspension_leaves_the_subaccount_active(world, committed, jobs_left_queued, twilio):
    client = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        # given a client that left LC Phone for its agency's own Twilio account, and LC Phone slow to suspend
        lc_sid = use_lc_phone(subaccount=client, admin=world.a.admin).lc_phone_account_sid
        moved, _ = use_twilio(twilio.url, subaccount=client, admin=world.a.admin, name="own")
    # LC Phone holds the suspension long enough for the move back to finish first, even on a loaded machine (at
    # 1.5 s the move back, its own call to LC Phone included, sometimes finished after it)
    inject_fault(twilio.url, lc_sid, "sleep", count=1, seconds=6)

    def move_back() -> None:
        with tenant_context(world.a.agency):
            provider_set_lc_phone(subaccount=client, by=world.a.admin)

    # when the platform suspends the LC Phone subaccount while the agency admin moves the client back
    with while_lc_phone_is_called(twilio.url, lc_sid, move_back), tenant_context(world.a.agency):
        outcome = provider_lc_phone_suspend(provider_id=moved.pk)

    # then the client is on LC Phone, no suspension is recorded, and the subaccount's resume is queued
    assert outcome is False
    assert account_status(twilio.url, lc_sid) == "suspended"  # the suspension reached LC Phone last
    assert queued(RESUME_TASK) == [(world.a.agency.schema_name, [moved.pk])]
    with tenant_context(world.a.agency):
        assert SubAccountProvider.objects.get(subaccount=client).provider == "lc_phone"
        # (of this subaccount: other tests of the run may have left committed suspensions of their own)
        assert not AuditEntry.objects.filter(action=AuditEntry.Action.LC_PHONE_SUSPENDED,
                                             after__lc_phone_account_sid=lc_sid).exists()
        # and the resume makes it active again
        assert provider_lc_phone_resume(provider_id=moved.pk) is True
    assert account_status(twilio.url, lc_sid) == "active"


def test_the_resume_is_retried_until_lc_phone_answers(world, db, jobs_left_queued, twilio, settings, caplog):
    client = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        # given a client on LC Phone whose subaccount a late suspension left suspended
        provider = use_lc_phone(subaccount=client, admin=world.a.admin)
        lc_sid = provider.lc_phone_account_sid
        _lc_phone_subaccount_set_status(lc_sid, "suspended")
        # when LC Phone answers each of the 4 attempts the settings allow after 1 s, and the settings wait 0.3 s
        settings.TWILIO_TIMEOUT_SECONDS = 0.3
        inject_fault(twilio.url, lc_sid, "sleep", seconds=1.0, count=4)
        # then the resume fails, for its task to retry
        with pytest.raises(UsageFetchError):
            provider_lc_phone_resume(provider_id=provider.pk)
        assert account_status(twilio.url, lc_sid) == "suspended"
        # and the retry, once LC Phone answers, resumes it (a retry of the suspension would have stopped at the
        # client being on LC Phone), and says so in the log
        resumed, logged = logged_by_providers(caplog, lambda: provider_lc_phone_resume(provider_id=provider.pk))
        assert resumed is True
    assert account_status(twilio.url, lc_sid) == "active"
    assert logged == [
        f"LC Phone subaccount {lc_sid} of sub-account {client.pk} resumed after a late suspension"]


def test_a_resume_of_a_client_no_longer_on_lc_phone_asks_nothing_of_twilio(world, db, jobs_left_queued, twilio):
    client = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        lc_sid = use_lc_phone(subaccount=client, admin=world.a.admin).lc_phone_account_sid
        moved, _ = use_twilio(twilio.url, subaccount=client, admin=world.a.admin, name="own")
        clear_request_log(twilio.url)
        assert provider_lc_phone_resume(provider_id=moved.pk) is False
    assert request_log(twilio.url, lc_sid) == []


def test_a_move_away_during_the_resume_queues_the_suspension_again(world, committed, jobs_left_queued, twilio):
    client = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        # given a client on LC Phone whose subaccount a late suspension left suspended, and LC Phone slow to resume
        provider = use_lc_phone(subaccount=client, admin=world.a.admin)
        lc_sid = provider.lc_phone_account_sid
        _lc_phone_subaccount_set_status(lc_sid, "suspended")
    clear_request_log(twilio.url)
    inject_fault(twilio.url, lc_sid, "sleep", count=1, seconds=6)

    def move_away() -> None:
        with tenant_context(world.a.agency):
            use_twilio(twilio.url, subaccount=client, admin=world.a.admin, name="own")

    # when the resume makes it active while the agency admin moves the client to its own Twilio account
    with while_lc_phone_is_called(twilio.url, lc_sid, move_away), tenant_context(world.a.agency):
        outcome = provider_lc_phone_resume(provider_id=provider.pk)

    # then the resume, finding the client gone from LC Phone, queues its suspension again (beside the move's own,
    # which may have reached LC Phone before the resume did)
    assert outcome is False
    assert queued(SUSPEND_TASK) == [(world.a.agency.schema_name, [provider.pk])] * 2
