"""Spend alerts: a day's spend above N× its trailing 30-day average and a floor emails the agency once, shows on
Phone Integration, and (when the agency asks) pauses the LC Phone subaccount."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from django_tenants.utils import tenant_context

from creditusage.models import SpendAlert, SpendAlertPolicy
from creditusage.services import (
    spend_alert_pause_apply,
    spend_alert_policy,
    spend_alert_resume_apply,
    spend_alerts_check,
)
from devservices.fake_twilio import account_status, create_account
from phone.models import SubAccountProvider
from tests.billing.fixtures import ACCT_A, ACCT_B
from tests.conftest import client_for
from tests.phone.conftest import MASTER_SID
from tests.wallets.helpers import add_delta, rebill
from wallets.services import wallet_rate


def _usage(client, *, account_id, raw_stripe, today_cost: str) -> None:
    rebill(client, account_id=account_id, raw=raw_stripe)
    today = timezone.now().date()
    for days_ago in range(1, 31):
        add_delta(client, "1.00", day=today - timedelta(days=days_ago))
    add_delta(client, today_cost, day=today)
    wallet_rate(subaccount_id=client.pk)


def test_a_spike_alerts_the_agency_once_and_shows_on_phone_integration(
        world, connected, raw_stripe, mailoutbox, django_capture_on_commit_callbacks):
    today = timezone.now().date()
    with tenant_context(world.a.agency):
        spiking, steady = world.a.subaccounts
        _usage(spiking, account_id=ACCT_A, raw_stripe=raw_stripe, today_cost="40.00")
        _usage(steady, account_id=ACCT_A, raw_stripe=raw_stripe, today_cost="2.00")
        # when the check runs (twice)
        with django_capture_on_commit_callbacks(execute=True):
            raised = spend_alerts_check(day=today)
        with django_capture_on_commit_callbacks(execute=True):
            again = spend_alerts_check(day=today)
        # then one alert, for the spiking client only, and one email to the agency admin
        assert [a.subaccount_id for a in raised] == [spiking.pk] and again == []
        alert = SpendAlert.objects.get()
        assert alert.trailing_average == Decimal("1.050000") and alert.spend == Decimal("42.000000")
        assert not alert.paused
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [world.a.admin.email]
    assert spiking.name in mailoutbox[0].subject and "$42.00" in mailoutbox[0].body
    html = client_for(world.a, world.a.admin).get("/agency/settings/phone-integration/").content.decode()
    assert 'data-testid="spend-alerts"' in html and "$42.00" in html and steady.name not in html.split(
        'data-testid="phone-integration"')[0]
    # agency B sees nothing of it
    html_b = client_for(world.b, world.b.admin).get("/agency/settings/phone-integration/").content.decode()
    assert 'data-testid="spend-alerts"' not in html_b
    with tenant_context(world.b.agency):
        assert not SpendAlert.objects.exists()


def test_below_the_floor_or_disabled_nothing_is_raised(world, connected, raw_stripe, mailoutbox):
    today = timezone.now().date()
    with tenant_context(world.b.agency):
        _usage(world.b.subaccounts[0], account_id=ACCT_B, raw_stripe=raw_stripe, today_cost="20.00")
        assert spend_alerts_check(day=today) == []  # 20 × 1.05 < the $25 floor
        add_delta(world.b.subaccounts[0], "20.00", day=today)
        wallet_rate(subaccount_id=world.b.subaccounts[0].pk)
        SpendAlertPolicy.objects.filter(pk=spend_alert_policy().pk).update(enabled=False)
        assert spend_alerts_check(day=today) == []
        assert not SpendAlert.objects.exists()
    assert mailoutbox == []


def test_auto_pause_suspends_the_lc_phone_subaccount(world, connected, raw_stripe, twilio,
                                                     django_capture_on_commit_callbacks):
    today = timezone.now().date()
    with tenant_context(world.a.agency):
        spiking, other = world.a.subaccounts
        _usage(spiking, account_id=ACCT_A, raw_stripe=raw_stripe, today_cost="40.00")
        rebill(other, account_id=ACCT_A, raw=raw_stripe)
        sid = SubAccountProvider.objects.get(subaccount=spiking).lc_phone_account_sid
        other_sid = SubAccountProvider.objects.get(subaccount=other).lc_phone_account_sid
        create_account(twilio.url, sid, "t" * 32, parent_sid=MASTER_SID)
        create_account(twilio.url, other_sid, "u" * 32, parent_sid=MASTER_SID)
        SpendAlertPolicy.objects.filter(pk=spend_alert_policy().pk).update(auto_pause=True)
        with django_capture_on_commit_callbacks() as callbacks:
            [alert] = spend_alerts_check(day=today)
        assert alert.paused and len(callbacks) == 2  # the email and the pause job
        assert spend_alert_pause_apply(alert_id=alert.pk) == "suspended"
    assert account_status(twilio.url, sid) == "suspended"
    assert account_status(twilio.url, other_sid) == "active"


def test_spend_alert_settings_refuse_bad_input_and_are_admin_only(world, db):
    browser = client_for(world.a, world.a.admin)
    response = browser.post("/agency/settings/billing/spend-alerts/", {"multiple": "0.5", "floor": "10",
                                                                         "enabled": "on"})
    assert response.status_code == 400 and 'class="errorlist' in response.content.decode()
    with tenant_context(world.a.agency):
        assert spend_alert_policy().multiple == Decimal("3.00")
    assert client_for(world.a, world.a.agency_user).post("/agency/settings/billing/spend-alerts/", {
        "multiple": "5", "floor": "1", "enabled": "on"}).status_code == 404
    response = browser.post("/agency/settings/billing/spend-alerts/", {"multiple": "5", "floor": "100",
                                                                         "enabled": "on", "auto_pause": "on"})
    assert response.status_code == 302
    with tenant_context(world.a.agency):
        policy = spend_alert_policy()
        assert (policy.multiple, policy.floor, policy.auto_pause) == (Decimal("5.00"), Decimal("100.00"), True)
    with tenant_context(world.b.agency):
        assert spend_alert_policy().multiple == Decimal("3.00")


def test_a_spike_is_caught_by_the_rating_that_brings_it(world, connected, raw_stripe, mailoutbox,
                                                       django_capture_on_commit_callbacks):
    from wallets.tasks import wallet_rate_subaccount

    today = timezone.now().date()
    with tenant_context(world.a.agency):
        spiking, steady = world.a.subaccounts
        _usage(spiking, account_id=ACCT_A, raw_stripe=raw_stripe, today_cost="1.00")
        _usage(steady, account_id=ACCT_A, raw_stripe=raw_stripe, today_cost="40.00")
        SpendAlert.objects.all().delete()  # only what the rating raises below
        mailoutbox.clear()
        # when the pull brings a spike and its rating runs (not the 15-minute check)
        add_delta(spiking, "45.00", day=today)
        with django_capture_on_commit_callbacks(execute=True):
            assert wallet_rate_subaccount(spiking.pk) == 1
        # then the alert is raised for the sub-account just rated, and only for it
        assert list(SpendAlert.objects.values_list("subaccount_id", "day")) == [(spiking.pk, today)]
    assert len(mailoutbox) == 1 and spiking.name in mailoutbox[0].subject


def _paused_spike(world, twilio, raw_stripe):
    today = timezone.now().date()
    spiking = world.a.subaccounts[0]
    _usage(spiking, account_id=ACCT_A, raw_stripe=raw_stripe, today_cost="40.00")
    sid = SubAccountProvider.objects.get(subaccount=spiking).lc_phone_account_sid
    create_account(twilio.url, sid, "t" * 32, parent_sid=MASTER_SID)
    SpendAlertPolicy.objects.filter(pk=spend_alert_policy().pk).update(auto_pause=True)
    [alert] = spend_alerts_check(day=today)
    assert spend_alert_pause_apply(alert_id=alert.pk) == "suspended"
    assert account_status(twilio.url, sid) == "suspended"
    return spiking, sid, alert


def test_an_agency_admin_resumes_a_paused_sub_account(world, connected, raw_stripe, twilio,
                                                      django_capture_on_commit_callbacks):
    from subaccounts.models import AuditEntry

    with tenant_context(world.a.agency):
        spiking, sid, alert = _paused_spike(world, twilio, raw_stripe)
    browser = client_for(world.a, world.a.admin)
    manage = browser.get(f"/agency/subaccounts/{spiking.pk}/").content.decode()
    assert 'data-testid="spend-alert-pause"' in manage
    # people who may not resume it, and another agency, change nothing
    for user in (world.a.agency_user, world.a.account_admins[0]):
        assert client_for(world.a, user).post(
            f"/agency/subaccounts/{spiking.pk}/spend-alert/resume/").status_code == 404
    client_for(world.b, world.b.admin).post(f"/agency/subaccounts/{spiking.pk}/spend-alert/resume/")
    with tenant_context(world.a.agency):
        assert SpendAlert.objects.get(pk=alert.pk).resumed_at is None
    # when the agency admin resumes it from Phone Integration
    with django_capture_on_commit_callbacks() as callbacks:
        response = browser.post(f"/agency/subaccounts/{spiking.pk}/spend-alert/resume/")
    assert response.status_code == 302 and response["Location"] == "/agency/settings/phone-integration/"
    assert len(callbacks) == 1  # the job that resumes it at the provider
    with tenant_context(world.a.agency):
        assert spend_alert_resume_apply(subaccount_id=spiking.pk) == "active"
        resumed = SpendAlert.objects.get(pk=alert.pk)
        audits = list(AuditEntry.objects.filter(subaccount=spiking, action__in=[
            AuditEntry.Action.SPEND_ALERT_PAUSED, AuditEntry.Action.SPEND_ALERT_RESUMED]).order_by("pk")
            .values_list("action", "actor"))
        # a pause job arriving late does not suspend it again
        assert spend_alert_pause_apply(alert_id=alert.pk) == "resumed"
    assert account_status(twilio.url, sid) == "active"
    assert resumed.resumed_by == world.a.admin.email and resumed.resumed_at is not None
    assert audits == [(AuditEntry.Action.SPEND_ALERT_PAUSED, "spend alert"),
                      (AuditEntry.Action.SPEND_ALERT_RESUMED, world.a.admin.email)]
    html = browser.get("/agency/settings/phone-integration/").content.decode()
    assert f"resumed by {world.a.admin.email}" in html and 'data-testid="spend-alert-resume"' not in html
    assert 'data-testid="spend-alert-pause"' not in browser.get(f"/agency/subaccounts/{spiking.pk}/").content.decode()
    # a second resume is refused with a reason and audits nothing
    response = browser.post(f"/agency/subaccounts/{spiking.pk}/spend-alert/resume/", {"back": "manage"}, follow=True)
    assert "is not paused by a spend alert" in response.content.decode()
    with tenant_context(world.a.agency):
        assert AuditEntry.objects.filter(action=AuditEntry.Action.SPEND_ALERT_RESUMED).count() == 1


def test_an_unpaid_wallet_keeps_the_sub_account_suspended(world, connected, raw_stripe, twilio,
                                                          django_capture_on_commit_callbacks):
    from wallets.models import Wallet

    with tenant_context(world.a.agency):
        spiking, sid, alert = _paused_spike(world, twilio, raw_stripe)
        Wallet.objects.filter(subaccount=spiking).update(recharge_state=Wallet.RechargeState.FAILED)
        assert Wallet.objects.get(subaccount=spiking).balance <= 0
    with django_capture_on_commit_callbacks():
        client_for(world.a, world.a.admin).post(f"/agency/subaccounts/{spiking.pk}/spend-alert/resume/")
    with tenant_context(world.a.agency):
        assert spend_alert_resume_apply(subaccount_id=spiking.pk) == "kept suspended for non-payment"
    assert account_status(twilio.url, sid) == "suspended"


def test_a_paid_recharge_does_not_lift_a_spend_alert_pause(world, connected, raw_stripe, twilio,
                                                          django_capture_on_commit_callbacks):
    from wallets.models import Wallet
    from wallets.services.suspension import wallet_suspension_apply

    with tenant_context(world.a.agency):
        # given a sub-account paused by a spend alert, and suspended for non-payment as well
        spiking, sid, alert = _paused_spike(world, twilio, raw_stripe)
        Wallet.objects.filter(subaccount=spiking).update(recharge_state=Wallet.RechargeState.FAILED)
        wallet = Wallet.objects.get(subaccount=spiking)
        assert wallet.balance <= 0
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "suspended"
        # when the wallet is paid again
        with django_capture_on_commit_callbacks():
            Wallet.objects.filter(pk=wallet.pk).update(recharge_state=Wallet.RechargeState.OK)
            outcome = wallet_suspension_apply(wallet_id=wallet.pk)
        # then the wallet no longer holds it, but the spend alert's pause does
        assert outcome == "kept paused by a spend alert"
        assert account_status(twilio.url, sid) == "suspended"
        assert Wallet.objects.get(pk=wallet.pk).suspended_at is None
    # until an agency admin lifts the pause
    with django_capture_on_commit_callbacks():
        client_for(world.a, world.a.admin).post(f"/agency/subaccounts/{spiking.pk}/spend-alert/resume/")
    with tenant_context(world.a.agency):
        assert spend_alert_resume_apply(subaccount_id=spiking.pk) == "active"
    assert account_status(twilio.url, sid) == "active"
