"""Spend alerts: a day's spend above N× its trailing 30-day average and a floor emails the agency once, shows on
Phone Integration, and (when the agency asks) pauses the LC Phone subaccount."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from django_tenants.utils import tenant_context

from creditusage.models import SpendAlert, SpendAlertPolicy
from creditusage.services import spend_alert_pause_apply, spend_alert_policy, spend_alerts_check
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
