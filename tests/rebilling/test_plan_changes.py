"""A plan change re-applies the rules at once, through one service (the platform admin's plan field too)."""

from __future__ import annotations

from decimal import Decimal

from django.core import mail
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from agencies.models import Agency, PlanChange
from agencies.services import agency_plan_change
from people.models import User
from rebilling.models import AgencyMultiplier, MultiplierOverride, SubAccountRebilling
from rebilling.selectors import multipliers_for, rebilling_decision_for
from rebilling.services import agency_multipliers_set, multipliers_set, rebilling_switch_on
from subaccounts.models import AuditEntry
from tests.factories import PASSWORD
from tests.rebilling.conftest import Shape, make_subaccount

LC = Shape("lc_phone", "active", has_admin=True, has_card=True)
TWILIO = Shape("twilio", "active", has_admin=True, has_card=True)


def _state(agency, subaccount):
    with tenant_context(Agency.objects.get(pk=agency.pk)):
        return (rebilling_decision_for(subaccount=subaccount).state,
                {str(p): m for p, m in multipliers_for(subaccount=subaccount).items()},
                SubAccountRebilling.objects.get(subaccount=subaccount).switched_on)


def test_pro_to_freelancer_to_starter_to_pro(world, ready, django_capture_on_commit_callbacks):
    # given a Pro agency with an LC Phone and a Twilio client, both rebilled, custom multipliers
    agency = world.a.agency
    admin = world.a.admin
    with tenant_context(agency):
        lc, twilio = ready, make_subaccount(TWILIO, name="Twilio client")
        agency_multipliers_set(multipliers={"sms": Decimal("2")}, by=admin)
        multipliers_set(subaccount=lc, multipliers={"calls": Decimal("3.25")}, by=admin)
        rebilling_switch_on(subaccount=lc, by=admin)
        rebilling_switch_on(subaccount=twilio, by=admin)
    connection.set_schema_to_public()
    assert _state(agency, lc)[1]["calls"] == Decimal("3.25")

    # when the platform moves it to Freelancer
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        effects = agency_plan_change(agency=agency, plan="freelancer", by="staff@platform.test")

    # then every multiplier snaps to 1.05x, the Twilio client stops being rebilled, LC Phone goes on
    state, multipliers, switched_on = _state(agency, lc)
    assert state == "enabled" and switched_on
    assert set(multipliers.values()) == {Decimal("1.05")}
    state, _, switched_on = _state(agency, twilio)
    assert state == "disabled"
    assert not switched_on
    with tenant_context(agency):
        assert not MultiplierOverride.objects.exists() and not AgencyMultiplier.objects.exists()
        lc_audit = list(AuditEntry.objects.filter(subaccount=lc, action=AuditEntry.Action.PLAN_RULES_APPLIED))
        assert lc_audit and lc_audit[0].actor == "staff@platform.test"
        assert lc_audit[0].before == {"calls": "3.2500"}
        twilio_off = AuditEntry.objects.get(subaccount=twilio, action=AuditEntry.Action.REBILLING_DISABLED)
        assert "Freelancer" in twilio_off.after["why"]
        assert AuditEntry.objects.filter(subaccount__isnull=True,
                                         action=AuditEntry.Action.AGENCY_MULTIPLIERS_CHANGED,
                                         actor="staff@platform.test").exists()
    connection.set_schema_to_public()
    assert {e.name for e in effects} == {"Ready client", "Twilio client"}
    [email] = mail.outbox
    assert email.to == ["admin@alpha.test"]
    assert email.subject == "Your plan is now Freelancer"
    assert "Ready client: multipliers are now locked at 1.05x" in email.body
    assert "Twilio client: rebilling switched off" in email.body

    # when it moves to Starter, all rebilling stops
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        agency_plan_change(agency=agency, plan="starter", by="staff@platform.test")
    state, multipliers, switched_on = _state(agency, lc)
    assert (state, multipliers, switched_on) == ("disabled", {}, False)
    [email] = mail.outbox
    assert "Ready client: rebilling switched off" in email.body

    # when it goes back to Pro, multipliers start at 1.05x and nothing is rebilled until switched on again
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert agency_plan_change(agency=agency, plan="pro", by="staff@platform.test") == []
    state, multipliers, switched_on = _state(agency, lc)
    assert state == "can_be_enabled" and not switched_on
    assert set(multipliers.values()) == {Decimal("1.05")}
    assert "stays off until you switch it on" in mail.outbox[0].body
    assert list(PlanChange.objects.filter(agency=agency).order_by("pk").values_list("old_plan", "new_plan")) == [
        ("pro", "freelancer"), ("freelancer", "starter"), ("starter", "pro")]

    # and agency B saw none of it
    with tenant_context(world.b.agency):
        assert not AuditEntry.objects.filter(action=AuditEntry.Action.PLAN_RULES_APPLIED).exists()


def test_freelancer_to_pro_keeps_105_until_the_agency_changes_it(world, db, django_capture_on_commit_callbacks):
    with tenant_context(world.b.agency):
        subaccount = make_subaccount(LC, name="Bravo LC")
    connection.set_schema_to_public()
    with django_capture_on_commit_callbacks(execute=True):
        assert agency_plan_change(agency=world.b.agency, plan="pro", by="staff@platform.test") == []
    with tenant_context(Agency.objects.get(pk=world.b.agency.pk)):
        assert set(multipliers_for(subaccount=subaccount).values()) == {Decimal("1.05")}


def test_the_platform_admins_plan_field_goes_through_the_service(world, ready, django_capture_on_commit_callbacks):
    # given a rebilled Twilio client of the Pro agency
    with tenant_context(world.a.agency):
        twilio = make_subaccount(TWILIO, name="Admin-changed Twilio")
        rebilling_switch_on(subaccount=twilio, by=world.a.admin)
    connection.set_schema_to_public()
    User.objects.create_superuser("root@platform.test", PASSWORD)
    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(email="root@platform.test"))
    agency = Agency.objects.get(pk=world.a.agency.pk)

    # when staff change the plan in the platform admin
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/agencies/agency/{agency.pk}/change/", {
            "name": agency.name, "plan": "freelancer", "billing_period": agency.billing_period,
            "domains-TOTAL_FORMS": "0", "domains-INITIAL_FORMS": "0", "_save": "Save"}, follow=True)

    # then the rules were re-applied and recorded
    assert response.status_code == 200
    assert Agency.objects.get(pk=agency.pk).plan == "freelancer"
    assert PlanChange.objects.get(agency=agency).changed_by == "root@platform.test"
    with tenant_context(Agency.objects.get(pk=agency.pk)):
        assert not SubAccountRebilling.objects.get(subaccount=twilio).switched_on
    assert mail.outbox and mail.outbox[0].subject == "Your plan is now Freelancer"
