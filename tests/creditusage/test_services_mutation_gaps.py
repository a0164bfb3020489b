"""creditusage/services.py where the rest of the suite does not look: the edges of a spend alert (a first day of
usage, the 30-day window, a spend of exactly the multiple, several sub-accounts checked at once), and a pause or
resume at the provider for sub-accounts with nothing on LC Phone, paused again, without a wallet, or at a provider
that is slow or failing."""

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.plans import PhoneProvider, Product
from creditusage.models import SpendAlert, SpendAlertPolicy, UsageRollup
from creditusage.services import (
    spend_alert_pause_apply,
    spend_alert_pause_lift,
    spend_alert_policy,
    spend_alert_policy_update,
    spend_alert_resume_apply,
    spend_alerts_check,
)
from devservices.fake_twilio import account_status, create_account, inject_fault, request_log
from people.models import User
from phone.models import SubAccountProvider
from phone.usage_client import UsageFetchError
from subaccounts.models import AuditEntry
from tests.phone.conftest import MASTER_SID
from tests.queued_jobs import queued as _queued

pytestmark = pytest.mark.django_db

LC_SID = "AC" + "7" * 32
OTHER_LC_SID = "AC" + "8" * 32
RESUME_TASK = "creditusage.tasks.spend_alert_resume"


def _spent(subaccount, day, revenue: str) -> None:
    """The day's rebilled usage of the sub-account, as the rating's rollup holds it."""
    UsageRollup.objects.create(subaccount=subaccount, day=day, product=Product.SMS, units=1,
                               cost=Decimal(revenue) / 2, revenue=Decimal(revenue), entries=1)


def _steady(subaccount, day, revenue_per_day: str) -> None:
    """The same spend on each of the 30 days before `day`."""
    for days_before in range(1, 31):
        _spent(subaccount, day - timedelta(days=days_before), revenue_per_day)


def _on_lc_phone(subaccount, twilio, sid: str = LC_SID) -> None:
    SubAccountProvider.objects.create(subaccount=subaccount, provider=PhoneProvider.LC_PHONE, lc_phone_account_sid=sid)
    create_account(twilio.url, sid, "t" * 32, parent_sid=MASTER_SID)


def _paused_alert(subaccount, *, days_ago: int = 0, resumed: bool = False) -> SpendAlert:
    return SpendAlert.objects.create(
        subaccount=subaccount, day=timezone.now().date() - timedelta(days=days_ago), spend=Decimal("90"),
        trailing_average=Decimal("1"), multiple=Decimal("3"), floor=Decimal("25"), paused=True,
        resumed_at=timezone.now() if resumed else None, resumed_by="admin@alpha.test" if resumed else "")




def test_a_first_day_of_usage_above_the_floor_alerts_against_a_zero_average(world, mailoutbox):
    today = timezone.now().date()
    with tenant_context(world.a.agency):
        # given a sub-account with no usage before today, spending $30 today (above the $25 floor)
        newcomer = world.a.subaccounts[0]
        _spent(newcomer, today, "30")
        # when the check runs
        [alert] = spend_alerts_check(day=today)
        # then it is alerted, its trailing average being zero
        assert (alert.subaccount_id, alert.spend, alert.trailing_average) == (newcomer.pk, Decimal(30), Decimal(0))
        assert SpendAlert.objects.get().trailing_average == Decimal("0.000000")
    with tenant_context(world.b.agency):
        assert not SpendAlert.objects.exists()


def test_the_average_reads_the_30_days_before_and_nothing_older(world):
    today = timezone.now().date()
    with tenant_context(world.a.agency):
        # given $30 spent 30 days ago, a huge spend 31 days ago, and $30 today
        client = world.a.subaccounts[0]
        _spent(client, today - timedelta(days=31), "3000")
        _spent(client, today - timedelta(days=30), "30")
        _spent(client, today, "30")
        # when the check runs
        [alert] = spend_alerts_check(day=today)
        # then the average is $30 over 30 days ($1), the day before the window left out: $30 is above 3 × $1
        assert (alert.spend, alert.trailing_average) == (Decimal(30), Decimal("1.000000"))


def test_a_spend_of_exactly_the_multiple_is_no_alert_whichever_sub_account_comes_first(world):
    today = timezone.now().date()
    earlier = today - timedelta(days=60)  # a window of its own: its 30 days end before today's begin
    with tenant_context(world.a.agency):
        first, second = world.a.subaccounts
        # given both clients spending $10.50 a day, then on each check day one spends exactly 3 × that ($31.50,
        # above the $25 floor) and the other a cent more: today the first is at the edge, earlier the second
        for day, at_edge, above in ((today, first, second), (earlier, second, first)):
            _steady(first, day, "10.50")
            _steady(second, day, "10.50")
            _spent(at_edge, day, "31.50")
            _spent(above, day, "31.51")
        # when each day is checked
        raised_today = spend_alerts_check(day=today)
        raised_earlier = spend_alerts_check(day=earlier)
        # then only the client a cent above the multiple is alerted, whichever of the two is looked at first
        assert [(a.subaccount_id, a.trailing_average) for a in raised_today] == [(second.pk, Decimal("10.500000"))]
        assert [(a.subaccount_id, a.trailing_average) for a in raised_earlier] == [(first.pk, Decimal("10.500000"))]
        assert sorted(SpendAlert.objects.values_list("subaccount_id", "day")) == sorted(
            [(second.pk, today), (first.pk, earlier)])


def test_a_sub_account_with_nothing_on_lc_phone_is_neither_paused_nor_resumed(world, twilio):
    with tenant_context(world.a.agency):
        # given a client with no phone provider, and a client that left LC Phone for its own Twilio account
        # (its old LC Phone subaccount is still on the row)
        no_provider, own_twilio = world.a.subaccounts
        create_account(twilio.url, LC_SID, "t" * 32, parent_sid=MASTER_SID)
        SubAccountProvider.objects.create(subaccount=own_twilio, provider=PhoneProvider.TWILIO,
                                          twilio_account_sid="AC" + "9" * 32, twilio_auth_token_encrypted="x",
                                          lc_phone_account_sid=LC_SID)
        alerts = [_paused_alert(no_provider), _paused_alert(own_twilio)]
        # when a spend alert pauses them, and (once lifted) resumes them
        paused = [spend_alert_pause_apply(alert_id=alert.pk) for alert in alerts]
        SpendAlert.objects.update(resumed_at=timezone.now(), resumed_by="admin@alpha.test")
        resumed = [spend_alert_resume_apply(subaccount_id=client.pk) for client in (no_provider, own_twilio)]
    # then nothing is asked of the provider: the old LC Phone subaccount is left as it is
    assert paused == ["skipped", "skipped"] and resumed == ["skipped", "skipped"]
    assert account_status(twilio.url, LC_SID) == "active"
    assert request_log(twilio.url, LC_SID) == []


def test_a_pause_queues_no_resume_unless_its_own_alert_was_lifted(world, twilio, jobs_left_queued):
    with tenant_context(world.a.agency):
        # given client 1 on LC Phone, paused by today's alert; and client 2, whose alert was already lifted
        client, other = world.a.subaccounts
        _on_lc_phone(client, twilio)
        _on_lc_phone(other, twilio, sid=OTHER_LC_SID)
        alert = _paused_alert(client)
        _paused_alert(other, resumed=True)
        # when the pause job suspends client 1
        assert spend_alert_pause_apply(alert_id=alert.pk) == "suspended"
    # then it is suspended and stays so: no resume job is queued (client 2's lifted alert is not client 1's)
    assert account_status(twilio.url, LC_SID) == "suspended"
    assert account_status(twilio.url, OTHER_LC_SID) == "active"
    assert _queued(RESUME_TASK) == []


def test_a_lift_while_a_newer_alert_still_pauses_keeps_the_sub_account_suspended(world, twilio):
    with tenant_context(world.a.agency):
        # given a client suspended by yesterday's alert, lifted since, and paused again by today's
        client = world.a.subaccounts[0]
        _on_lc_phone(client, twilio)
        yesterday = _paused_alert(client, days_ago=1)
        assert spend_alert_pause_apply(alert_id=yesterday.pk) == "suspended"
        SpendAlert.objects.filter(pk=yesterday.pk).update(resumed_at=timezone.now(), resumed_by="admin@alpha.test")
        _paused_alert(client)
        # when the resume job of the lift runs
        outcome = spend_alert_resume_apply(subaccount_id=client.pk)
    # then today's pause holds: the subaccount stays suspended
    assert outcome == "still paused"
    assert account_status(twilio.url, LC_SID) == "suspended"


def test_a_lifted_pause_resumes_a_sub_account_that_has_no_wallet(world, twilio):
    with tenant_context(world.a.agency):
        # given a client on LC Phone without a wallet (never rebilled), suspended by a spend alert since lifted
        client = world.a.subaccounts[0]
        _on_lc_phone(client, twilio)
        alert = _paused_alert(client)
        assert spend_alert_pause_apply(alert_id=alert.pk) == "suspended"
        SpendAlert.objects.filter(pk=alert.pk).update(resumed_at=timezone.now(), resumed_by="admin@alpha.test")
        # when the resume job runs: it is active again (no unpaid wallet holds it)
        assert spend_alert_resume_apply(subaccount_id=client.pk) == "active"
    assert account_status(twilio.url, LC_SID) == "active"


def test_a_pause_gives_up_after_the_configured_attempts(world, twilio):
    with tenant_context(world.a.agency):
        # given a client paused by an alert, and LC Phone answering 500 to the next four requests
        client = world.a.subaccounts[0]
        _on_lc_phone(client, twilio)
        alert = _paused_alert(client)
        inject_fault(twilio.url, LC_SID, "status", count=4, status=500)
        # when the pause job runs: it fails after the 4 attempts the settings allow (the job retries later)
        with pytest.raises(UsageFetchError):
            spend_alert_pause_apply(alert_id=alert.pk)
    # then LC Phone was asked 4 times and the subaccount is still active
    assert len(request_log(twilio.url, LC_SID)) == 4
    assert account_status(twilio.url, LC_SID) == "active"


def test_a_pause_waits_no_longer_than_the_configured_timeout(world, twilio, settings):
    with tenant_context(world.a.agency):
        # given a client paused by an alert, LC Phone taking a second to answer, and a 0.2 s timeout
        client = world.a.subaccounts[0]
        _on_lc_phone(client, twilio)
        alert = _paused_alert(client)
        settings.TWILIO_TIMEOUT_SECONDS = 0.2
        inject_fault(twilio.url, LC_SID, "sleep", count=4, seconds=1.0)
        # when the pause job runs: every attempt times out, and the job fails (to be retried later)
        with pytest.raises(UsageFetchError):
            spend_alert_pause_apply(alert_id=alert.pk)


PAUSE_TASK = "creditusage.tasks.spend_alert_pause"


def test_an_alert_that_pauses_says_so_to_the_active_agency_admins_and_in_the_audit_log(
        world, mailoutbox, django_capture_on_commit_callbacks, jobs_left_queued):
    today = timezone.now().date()
    with tenant_context(world.a.agency):
        # given an agency admin who left, and the agency's policy: 4× the average and $20, pausing on an alert
        User.objects.create_user("gone@alpha.test", role=User.Role.AGENCY_ADMIN, is_active=False)
        SpendAlertPolicy.objects.filter(pk=spend_alert_policy().pk).update(
            auto_pause=True, multiple=Decimal("4"), floor=Decimal("20"))
        spiking = world.a.subaccounts[0]
        _steady(spiking, today, "2")
        _spent(spiking, today, "42.5")

        # when the check runs and its transaction commits
        with django_capture_on_commit_callbacks(execute=True):
            [alert] = spend_alerts_check(day=today)

        # then the alert keeps the policy it was raised under, and is a pause
        alert.refresh_from_db()
        assert (alert.spend, alert.trailing_average, alert.multiple, alert.floor, alert.paused) == (
            Decimal("42.5"), Decimal("2"), Decimal("4"), Decimal("20"), True)
        # and the sub-account's audit log says the spend alert paused it, on which day, at what spend
        [audit] = AuditEntry.objects.filter(action=AuditEntry.Action.SPEND_ALERT_PAUSED)
        assert (audit.subaccount_id, audit.actor, audit.after) == (
            spiking.pk, "spend alert", {"day": today.isoformat(), "spend": str(alert.spend),
                                        "trailing_average": "2.000000"})
    # and the active agency admin (only) is told, in so many words
    [email] = mailoutbox
    assert (email.to, email.subject) == ([world.a.admin.email], f"Unusual phone spend: {spiking.name}")
    assert email.body == (
        f"{spiking.name} spent $42.50 on phone usage on {today:%Y-%m-%d}, more than 4.00x its 30-day daily "
        "average ($2.00) and above $20.00.\n"
        "This can be SMS pumping or toll fraud: check the sub-account's usage details.\n"
        "Its phone usage has been paused automatically, as your settings ask.\n")
    # and the job that pauses it at the provider is queued for this alert
    assert [args for _schema, args in _queued(PAUSE_TASK)] == [[alert.pk]]


def test_lifting_a_pause_lifts_every_pause_of_that_sub_account_audits_their_days_and_queues_the_resume(
        world, django_capture_on_commit_callbacks, jobs_left_queued):
    with tenant_context(world.a.agency):
        # given two pauses of client 1 and an alert of its that paused nothing, and a pause of client 2
        client, other = world.a.subaccounts
        older, newer = _paused_alert(client, days_ago=3), _paused_alert(client)
        notice = _paused_alert(client, days_ago=5)
        SpendAlert.objects.filter(pk=notice.pk).update(paused=False)
        kept = _paused_alert(other)

        # when the agency admin lifts client 1's pause
        with django_capture_on_commit_callbacks(execute=True):
            lifted = spend_alert_pause_lift(subaccount=client, by=world.a.admin)

        # then both of client 1's pauses are lifted, by them; its other alert and client 2's pause are left
        assert [alert.pk for alert in lifted] == [older.pk, newer.pk]
        assert set(SpendAlert.objects.filter(resumed_at__isnull=False).values_list("pk", "resumed_by")) == {
            (older.pk, world.a.admin.email), (newer.pk, world.a.admin.email)}
        assert not SpendAlert.objects.filter(pk__in=[notice.pk, kept.pk], resumed_at__isnull=False).exists()
        # and the audit log names the days whose pauses were lifted
        [audit] = AuditEntry.objects.filter(action=AuditEntry.Action.SPEND_ALERT_RESUMED)
        assert (audit.subaccount_id, audit.actor, audit.before, audit.after) == (
            client.pk, world.a.admin.email, {"paused_by_alerts_of": [older.day.isoformat(), newer.day.isoformat()]},
            {"paused_by_alerts_of": []})
        # and the job that resumes client 1 at the provider is queued
        assert [args for _schema, args in _queued(RESUME_TASK)] == [[client.pk]]

        # and lifting it again is refused, saying why
        with pytest.raises(ValidationError) as refused:
            spend_alert_pause_lift(subaccount=client, by=world.a.admin)
        assert refused.value.messages == [f"{client.name}'s phone usage is not paused by a spend alert."]


@pytest.mark.parametrize(("multiple", "floor", "reason"), [
    (Decimal("1"), Decimal("25"), "The multiple must be above 1."),
    (Decimal("3"), Decimal("-0.01"), "The floor cannot be negative."),
])
def test_the_policy_refuses_what_the_database_would_with_the_reason(world, multiple, floor, reason):
    with tenant_context(world.a.agency), pytest.raises(ValidationError) as refused:
        spend_alert_policy_update(enabled=True, multiple=multiple, floor=floor, auto_pause=False, by=world.a.admin)
    assert refused.value.messages == [reason]


def test_the_policy_takes_a_multiple_just_above_one_and_a_floor_of_zero_and_logs_who_set_it(world, caplog):
    with tenant_context(world.a.agency), caplog.at_level(logging.INFO, logger="creditusage.services"):
        policy = spend_alert_policy_update(enabled=False, multiple=Decimal("1.01"), floor=Decimal("0"),
                                           auto_pause=True, by=world.a.admin)
        policy.refresh_from_db()
        assert (policy.enabled, policy.multiple, policy.floor, policy.auto_pause) == (
            False, Decimal("1.01"), Decimal("0"), True)
    assert [r.getMessage() for r in caplog.records if r.name == "creditusage.services"] == [
        f"Spend alert policy set by {world.a.admin.email}: {policy}, auto-pause True"]
