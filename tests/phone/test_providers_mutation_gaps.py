"""phone/services/providers.py where the rest of the suite does not look: what a 401 on the agency's own credentials
records (the provider's error and the audit entry), how the errors of a pull are recorded on the provider, LC Phone
answering too slowly to suspend or resume a subaccount (the platform's Twilio timeout and retries), and the jobs a
provider change queues once it commits."""

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import tenant_context

from devservices.fake_twilio import account_status, create_account, inject_fault
from phone.models import ProviderStatus, RetiredAccount, SubAccountProvider
from phone.services import (
    PullOutcome,
    provider_lc_phone_suspend,
    provider_mark_credentials_invalid,
    provider_record_error,
    provider_set_lc_phone,
    provider_set_twilio,
    usage_pull,
)
from phone.usage_client import UsageFetchError, check_credentials
from phoneregistry.models import TwilioAccountClaim
from rebill.celery import app
from subaccounts.models import AuditEntry, SubAccount
from tests.phone.helpers import (
    agency_twilio_account,
    logged_by_providers,
    put_usage,
    sid,
    today,
    token,
    usage,
    use_lc_phone,
    use_twilio,
)
from tests.queued_jobs import broker as _queue
from tests.queued_jobs import queued as _queued

pytestmark = pytest.mark.django_db

LONG_REASON = "Twilio said: " + "x" * 600


def test_a_401_on_the_agencys_credentials_is_recorded_on_the_provider_and_audited_as_twilios(world, twilio, caplog):
    with tenant_context(world.a.agency):
        # given a sub-account on its agency's own Twilio account, whose token the agency rotated in Twilio
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        create_account(twilio.url, provider.twilio_account_sid, "r" * 32)
        before = timezone.now()
        # when a pull runs
        with caplog.at_level(logging.WARNING, logger="phone.services.usage"):
            assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.CREDENTIALS_REJECTED
        assert [record.getMessage() for record in caplog.records if record.name == "phone.services.usage"] == [
            f"Twilio rejected the credentials of sub-account {provider.subaccount_id}: usage of "
            f"{provider.twilio_account_sid}: Twilio answered 401 (code 20003): Authenticate"]
        # then the provider says why and since when
        stored = SubAccountProvider.objects.get(pk=provider.pk)
        assert (stored.status, stored.last_error) == (
            ProviderStatus.CREDENTIALS_INVALID,
            "Twilio rejected the Account SID and auth token (401). Enter them again to resume.")
        assert before <= stored.last_error_at <= timezone.now()
        # and the sub-account's audit log has Twilio's rejection, the provider before and after
        [entry] = AuditEntry.objects.filter(action=AuditEntry.Action.CREDENTIALS_REJECTED)
        snapshot = {"provider": "twilio", "lc_phone_account_sid": "", "twilio_account_sid": provider.twilio_account_sid,
                    "twilio_auth_token_last4": provider.twilio_auth_token_last4}
        assert (entry.subaccount_id, entry.actor, entry.before, entry.after) == (
            provider.subaccount_id, "Twilio", {**snapshot, "status": "active"},
            {**snapshot, "status": "credentials_invalid"})


def test_marking_credentials_invalid_says_it_did_and_keeps_the_first_500_characters_of_the_reason(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        token_in_use = provider.twilio_auth_token_encrypted
        assert provider_mark_credentials_invalid(provider=provider, encrypted_token=token_in_use,
                                                 reason=LONG_REASON) is True
        assert SubAccountProvider.objects.get(pk=provider.pk).last_error == LONG_REASON[:500]


def test_a_pull_that_cannot_reach_twilio_records_the_error_and_when_on_the_provider(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        SubAccountProvider.objects.filter(pk=provider.pk).update(updated_at=timezone.now() - timedelta(days=1))
        # given Twilio fails each of the 4 attempts the settings allow
        inject_fault(twilio.url, provider.twilio_account_sid, "status", status=500, count=4)
        before = timezone.now()
        with pytest.raises(UsageFetchError):
            usage_pull(provider_id=provider.pk)
        stored = SubAccountProvider.objects.get(pk=provider.pk)
        assert stored.last_error.startswith("Usage could not be read from Twilio: ")
        assert before <= stored.last_error_at <= timezone.now()
        assert before <= stored.updated_at <= timezone.now()
        assert stored.status == ProviderStatus.ACTIVE


def test_a_recorded_error_keeps_its_first_500_characters(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        provider_record_error(provider=provider, reason=LONG_REASON)
        assert SubAccountProvider.objects.get(pk=provider.pk).last_error == LONG_REASON[:500]


def _left_lc_phone(world, twilio) -> tuple[SubAccountProvider, str]:
    """A client that left LC Phone for its agency's own Twilio account: (its provider, the LC Phone subaccount)."""
    lc_sid = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin).lc_phone_account_sid
    moved, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
    return moved, lc_sid


def test_a_suspension_lc_phone_answers_too_slowly_is_left_to_the_tasks_retry_which_suspends_and_logs_it(
        world, twilio, settings, caplog):
    with tenant_context(world.a.agency):
        moved, lc_sid = _left_lc_phone(world, twilio)
        # given LC Phone answers each of the 4 attempts the settings allow after 1 s, and the settings wait 0.3 s
        settings.TWILIO_TIMEOUT_SECONDS = 0.3
        inject_fault(twilio.url, lc_sid, "sleep", seconds=1.0, count=4)
        # when the suspension runs: it fails for the task to retry, and nothing is recorded
        with pytest.raises(UsageFetchError):
            provider_lc_phone_suspend(provider_id=moved.pk)
        assert account_status(twilio.url, lc_sid) == "active"
        assert not AuditEntry.objects.filter(action=AuditEntry.Action.LC_PHONE_SUSPENDED).exists()
        # and when the task retries with LC Phone answering again: suspended, and the platform's log says so
        suspended, logged = logged_by_providers(caplog, lambda: provider_lc_phone_suspend(provider_id=moved.pk))
        assert suspended is True
    assert account_status(twilio.url, lc_sid) == "suspended"
    assert logged == [
        f"LC Phone subaccount {lc_sid} of sub-account {moved.subaccount_id} suspended"]


def test_a_move_back_lc_phone_answers_too_slowly_to_resume_changes_nothing(world, twilio, settings):
    with tenant_context(world.a.agency):
        moved, lc_sid = _left_lc_phone(world, twilio)
        assert provider_lc_phone_suspend(provider_id=moved.pk) is True
        # given LC Phone answers each of the 4 attempts the settings allow after 1 s, and the settings wait 0.3 s
        settings.TWILIO_TIMEOUT_SECONDS = 0.3
        inject_fault(twilio.url, lc_sid, "sleep", seconds=1.0, count=4)
        # when the agency admin moves the client back to LC Phone: refused, and it stays on its own Twilio account
        with pytest.raises(ValidationError, match="LC Phone could not be set up right now"):
            provider_set_lc_phone(subaccount=moved.subaccount, by=world.a.admin)
        assert SubAccountProvider.objects.get(pk=moved.pk).provider == "twilio"
    assert account_status(twilio.url, lc_sid) == "suspended"


@pytest.fixture
def run_queue() -> Iterator[None]:
    """This run's Celery queue, empty before and after the test (nothing consumes it in a test)."""
    _queue().delete(app.conf.task_default_queue)
    yield
    _queue().delete(app.conf.task_default_queue)


def test_leaving_lc_phone_queues_the_suspension_of_that_provider(world, twilio, run_queue,
                                                                 django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        with django_capture_on_commit_callbacks(execute=True):
            moved, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
    assert _queued("phone.tasks.lc_phone_subaccount_suspend") == [(world.a.agency.schema_name, [moved.pk])]


def test_fixing_rejected_credentials_queues_a_pull_of_that_provider_at_once(world, twilio, run_queue,
                                                                          django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        create_account(twilio.url, provider.twilio_account_sid, "r" * 32)
        assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.CREDENTIALS_REJECTED
        with django_capture_on_commit_callbacks(execute=True):
            provider_set_twilio(subaccount=provider.subaccount, account_sid=provider.twilio_account_sid,
                                auth_token="r" * 32, by=world.a.admin)
    assert _queued("phone.tasks.usage_pull_subaccount") == [(world.a.agency.schema_name, [provider.pk])]


def test_malformed_credentials_are_explained_next_to_each_field(world, twilio):
    with tenant_context(world.a.agency):
        with pytest.raises(ValidationError) as refused:
            provider_set_twilio(subaccount=world.a.subaccounts[0], account_sid="AC123", auth_token="short",
                                by=world.a.admin)
    assert refused.value.message_dict == {
        "account_sid": ["A Twilio Account SID is AC followed by 32 lowercase hex characters."],
        "auth_token": ["A Twilio auth token is 32 letters and digits."]}


def test_credentials_twilio_rejects_are_explained_next_to_the_token(world, twilio):
    account_sid, auth_token = agency_twilio_account(twilio.url, "own")
    with tenant_context(world.a.agency):
        with pytest.raises(ValidationError) as refused:
            provider_set_twilio(subaccount=world.a.subaccounts[0], account_sid=account_sid,
                                auth_token=auth_token[::-1], by=world.a.admin)
    assert refused.value.message_dict == {"auth_token": [
        "Twilio did not accept this Account SID and auth token. Copy both again from your Twilio console and retry."]}


def test_credentials_twilio_answers_too_slowly_to_check_are_not_saved(world, twilio, settings, caplog):
    account_sid, auth_token = agency_twilio_account(twilio.url, "own")
    # given Twilio answers each of the 4 attempts the settings allow after 1 s, and the settings wait 0.3 s
    settings.TWILIO_TIMEOUT_SECONDS = 0.3
    inject_fault(twilio.url, account_sid, "sleep", seconds=1.0, count=4)
    with tenant_context(world.a.agency):
        with caplog.at_level(logging.WARNING, logger="phone.services.providers"), \
                pytest.raises(ValidationError) as refused:
            provider_set_twilio(subaccount=world.a.subaccounts[0], account_sid=account_sid, auth_token=auth_token,
                                by=world.a.admin)
        assert not SubAccountProvider.objects.exists()
    assert refused.value.messages == [
        "Twilio could not be reached to check these credentials; nothing was saved. Try again in a minute."]
    # and the log names the account, without a traceback
    [warning] = [record for record in caplog.records if record.name == "phone.services.providers"]
    assert warning.getMessage() == f"Checking Twilio credentials of {account_sid} failed" and not warning.exc_info


def test_an_account_twilio_does_not_know_is_explained_next_to_the_sid(world, twilio):
    account_sid, auth_token = agency_twilio_account(twilio.url, "own")
    inject_fault(twilio.url, account_sid, "status", status=404)
    with tenant_context(world.a.agency):
        with pytest.raises(ValidationError) as refused:
            provider_set_twilio(subaccount=world.a.subaccounts[0], account_sid=account_sid, auth_token=auth_token,
                                by=world.a.admin)
        assert not SubAccountProvider.objects.exists()
    assert refused.value.message_dict == {"account_sid": ["Twilio does not know this Account SID."]}


def _refusal(world, account_sid: str, auth_token: str) -> ValidationError:
    with tenant_context(world.a.agency):
        with pytest.raises(ValidationError) as refused:
            provider_set_twilio(subaccount=world.a.subaccounts[0], account_sid=account_sid, auth_token=auth_token,
                                by=world.a.admin)
        assert not SubAccountProvider.objects.filter(subaccount=world.a.subaccounts[0]).exists()
    return refused.value


def test_an_account_that_is_not_active_is_refused_with_its_status(world, twilio):
    account_sid, auth_token = sid("suspended"), token("suspended")
    create_account(twilio.url, account_sid, auth_token, status="suspended")
    assert _refusal(world, account_sid, auth_token).message_dict == {
        "account_sid": ["This Twilio account is suspended; use an active account."]}


def test_the_platforms_own_account_is_refused_for_a_client(world, twilio):
    assert _refusal(world, twilio.master_sid, twilio.master_token).message_dict == {
        "account_sid": ["This is the platform's own account; choose LC Phone instead."]}


def test_an_account_billed_in_another_currency_is_refused_next_to_the_sid(world, twilio):
    account_sid, auth_token = sid("euro"), token("euro")
    create_account(twilio.url, account_sid, auth_token, currency="eur")
    assert _refusal(world, account_sid, auth_token).message_dict == {"account_sid": [
        "This Twilio account is billed in EUR; only accounts billed in USD can be rebilled. Nothing was saved."]}


def test_an_account_whose_currency_twilio_answers_too_slowly_to_tell_is_not_saved(world, twilio, settings):
    account_sid, auth_token = agency_twilio_account(twilio.url, "own")
    # given Twilio answers the account at once, then each of the 4 attempts the settings allow at its currency
    # after 1 s, and the settings wait 0.3 s
    settings.TWILIO_TIMEOUT_SECONDS = 0.3
    inject_fault(twilio.url, account_sid, "sleep", seconds=0)
    inject_fault(twilio.url, account_sid, "sleep", seconds=1.0, count=4)
    assert _refusal(world, account_sid, auth_token).messages == [
        "Twilio could not be reached to check this account's currency; nothing was saved. Try again in a minute."]


def test_the_lc_phone_subaccount_is_named_after_the_agency_and_the_client_in_64_characters(world, twilio, caplog):
    with tenant_context(world.a.agency):
        client = SubAccount.objects.create(name="A client whose name is much longer than Twilio's sixty-four")
        with caplog.at_level(logging.INFO, logger="phone.services.providers"):
            lc_sid = use_lc_phone(subaccount=client, admin=world.a.admin).lc_phone_account_sid
    seen = check_credentials(account_sid=lc_sid, auth_sid=twilio.master_sid, auth_token=twilio.master_token,
                             base_url=twilio.url)
    assert seen.friendly_name == f"rebill:{world.a.agency.schema_name}:{client.pk} {client.name}"[:64]
    assert len(seen.friendly_name) == 64
    assert [record.getMessage() for record in caplog.records if record.name == "phone.services.providers"] == [
        f"LC Phone subaccount {lc_sid} created for sub-account {client.pk}"]


def test_lc_phone_that_keeps_refusing_the_creation_changes_nothing_and_is_logged(world, twilio, caplog):
    # given LC Phone answers 429 to each of the 4 attempts the settings allow (a fifth would succeed)
    inject_fault(twilio.url, twilio.master_sid, "status", status=429, count=4)
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        with caplog.at_level(logging.ERROR, logger="phone.services.providers"), \
                pytest.raises(ValidationError) as refused:
            use_lc_phone(subaccount=client, admin=world.a.admin)
        assert not SubAccountProvider.objects.exists()
    assert refused.value.messages == ["LC Phone could not be set up right now; nothing was changed. Try again later."]
    assert [record.getMessage() for record in caplog.records if record.name == "phone.services.providers"] == [
        f"Creating the LC Phone subaccount of sub-account {client.pk} failed: new subaccount of {twilio.master_sid}: "
        "Twilio answered 429 (code 20429): Unable to create record: Too Many Requests"]


def test_lc_phone_without_master_credentials_tells_the_platform_what_to_set(world, twilio, settings, caplog):
    settings.TWILIO_MASTER_AUTH_TOKEN = ""
    with tenant_context(world.a.agency):
        with caplog.at_level(logging.ERROR, logger="phone.services.providers"), pytest.raises(ValidationError):
            use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
    assert [record.getMessage() for record in caplog.records if record.name == "phone.services.providers"] == [
        "LC Phone is not configured: set TWILIO_MASTER_ACCOUNT_SID and TWILIO_MASTER_AUTH_TOKEN"]


def test_an_account_left_is_retired_for_35_days_and_its_claim_released_then(world, twilio):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        first, _ = use_twilio(twilio.url, subaccount=client, admin=world.a.admin, name="first")
        before = timezone.now()
        # when the client moves to another Twilio account of its agency
        second, _ = use_twilio(twilio.url, subaccount=client, admin=world.a.admin, name="second")
        # then the first is re-read for 35 days from the move, with its own token
        [retired] = RetiredAccount.objects.all()
        assert (retired.subaccount_id, retired.account_sid, retired.provider, retired.twilio_auth_token_encrypted) == (
            client.pk, first.twilio_account_sid, "twilio", first.twilio_auth_token_encrypted)
        assert before <= retired.retired_at <= timezone.now()
        assert retired.pull_until == retired.retired_at + timedelta(days=35)
    # and nobody else may bill it until then: its claim is released the moment its pulls end
    claim = TwilioAccountClaim.objects.get(account_sid=first.twilio_account_sid)
    assert claim.released_after == retired.pull_until


def test_a_move_back_to_lc_phone_is_audited_as_a_resume_of_the_same_subaccount(world, twilio):
    with tenant_context(world.a.agency):
        moved, lc_sid = _left_lc_phone(world, twilio)
        provider_set_lc_phone(subaccount=moved.subaccount, by=world.a.admin)
        [entry] = AuditEntry.objects.filter(action=AuditEntry.Action.LC_PHONE_RESUMED)
    assert (entry.subaccount_id, entry.actor, entry.before, entry.after) == (
        moved.subaccount_id, world.a.admin.email, {"lc_phone_account_sid": lc_sid, "status": "suspended"},
        {"lc_phone_account_sid": lc_sid, "status": "active"})


def test_saving_the_same_account_again_keeps_what_was_read_and_another_account_starts_afresh(world, twilio):
    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        put_usage(twilio.url, provider.twilio_account_sid, [usage("calls-outbound", today(), 5)])
        assert usage_pull(provider_id=provider.pk).outcome == PullOutcome.STORED
        pulled = SubAccountProvider.objects.get(pk=provider.pk)
        assert pulled.last_pulled_at is not None and pulled.read_marks
        # when the admin saves the same credentials again: what was read of that account stands
        use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="own")
        again = SubAccountProvider.objects.get(pk=provider.pk)
        assert (again.last_pulled_at, again.read_marks) == (pulled.last_pulled_at, pulled.read_marks)
        # and when another account is saved: nothing of it has been read yet
        use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="another")
        other = SubAccountProvider.objects.get(pk=provider.pk)
        assert (other.last_pulled_at, other.read_marks) == (None, {})


def test_an_account_another_client_bills_is_refused_next_to_the_sid(world, twilio):
    with tenant_context(world.a.agency):
        use_twilio(twilio.url, subaccount=world.a.subaccounts[1], admin=world.a.admin, name="shared")
    assert _refusal(world, sid("shared"), token("shared")).message_dict == {"account_sid": [
        "This Twilio account is already used by another sub-account; each Twilio account can be billed by one "
        "sub-account only."]}


def test_a_move_to_an_lc_phone_subaccount_another_client_holds_is_refused_and_logged(world, twilio, caplog):
    first, second = world.a.subaccounts[:2]
    with tenant_context(world.a.agency):
        # given client 1 on LC Phone, and client 2 on its own Twilio account with client 1's LC Phone subaccount
        # recorded as its own (the platform handed one subaccount out twice)
        lc_sid = use_lc_phone(subaccount=first, admin=world.a.admin).lc_phone_account_sid
        moved, _ = use_twilio(twilio.url, subaccount=second, admin=world.a.admin, name="second-own")
        SubAccountProvider.objects.filter(pk=moved.pk).update(lc_phone_account_sid=lc_sid)
        audited = AuditEntry.objects.count()
        # when the agency admin moves client 2 to LC Phone
        with caplog.at_level(logging.ERROR, logger="phone.services.providers"), \
                pytest.raises(ValidationError) as refused:
            provider_set_lc_phone(subaccount=second, by=world.a.admin)
        # then it is refused, client 2 stays on its own Twilio account, and the platform's log names the subaccount
        assert refused.value.messages == ["LC Phone could not be set up right now; nothing was changed."]
        after = SubAccountProvider.objects.get(pk=moved.pk)
        assert (after.provider, after.twilio_account_sid) == ("twilio", sid("second-own"))
        assert AuditEntry.objects.count() == audited
    assert TwilioAccountClaim.objects.get(account_sid=lc_sid).subaccount_id == first.pk
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"LC Phone subaccount {lc_sid} is claimed by another sub-account"]


def test_a_move_is_audited_with_the_provider_before_and_after(world, twilio):
    with tenant_context(world.a.agency):
        # given a client on LC Phone, moved by the agency admin to the agency's own Twilio account
        moved, lc_sid = _left_lc_phone(world, twilio)
        [entry] = AuditEntry.objects.filter(action=AuditEntry.Action.PROVIDER_SET).exclude(before={})
    # then the audit entry keeps the provider as it was and as it is (never the token)
    assert (entry.subaccount_id, entry.actor, entry.before, entry.after) == (
        moved.subaccount_id, world.a.admin.email,
        {"provider": "lc_phone", "lc_phone_account_sid": lc_sid, "twilio_account_sid": "",
         "twilio_auth_token_last4": "", "status": "active"},
        {"provider": "twilio", "lc_phone_account_sid": lc_sid, "twilio_account_sid": sid("own"),
         "twilio_auth_token_last4": token("own")[-4:], "status": "active"})


def test_new_credentials_for_the_same_twilio_account_keep_its_claim(world, twilio):
    client = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        # given a client on the agency's own Twilio account, whose auth token the agency admin then changes
        provider, _ = use_twilio(twilio.url, subaccount=client, admin=world.a.admin, name="own")
        new_token = token("own-rotated")
        create_account(twilio.url, provider.twilio_account_sid, new_token, friendly_name="own")
        provider_set_twilio(subaccount=client, account_sid=provider.twilio_account_sid, auth_token=new_token,
                            by=world.a.admin)
    # then the account is still the client's alone, not released for others to take after a while
    claim = TwilioAccountClaim.objects.get(account_sid=provider.twilio_account_sid)
    assert (claim.subaccount_id, claim.released_after) == (client.pk, None)


def test_a_second_move_keeps_pulling_both_accounts_left(world, twilio):
    client = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        # given a client that left LC Phone for Twilio account "own", then "own" for "other"
        moved, lc_sid = _left_lc_phone(world, twilio)
        use_twilio(twilio.url, subaccount=client, admin=world.a.admin, name="other")
        # then both accounts it left are still pulled for their late corrections
        assert sorted(RetiredAccount.objects.filter(subaccount_id=client.pk).values_list("account_sid", flat=True)) \
            == sorted([lc_sid, sid("own")])
