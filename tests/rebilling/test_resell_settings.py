"""Manage Client's resell settings, Settings → Rebilling defaults, the live preview, the audit log and bulk."""

from __future__ import annotations

import re
from decimal import Decimal

from django_tenants.utils import tenant_context

from rebilling.models import AgencyMultiplier, MultiplierOverride, SubAccountRebilling
from rebilling.selectors import multipliers_for
from subaccounts.models import AuditEntry
from tests.conftest import client_for
from tests.rebilling.conftest import Shape, make_subaccount

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_switching_on_records_when_and_by_whom_and_off_again(world, ready):
    client = client_for(world.a, world.a.admin)
    response = client.post(f"/agency/subaccounts/{ready.pk}/rebilling/switch/", {"switch": "on"}, follow=True)
    assert "Phone rebilling switched on." in response.content.decode()
    with tenant_context(world.a.agency):
        settings = SubAccountRebilling.objects.get(subaccount=ready)
        assert settings.switched_on and settings.switched_on_by == "admin@alpha.test"
        assert settings.switched_on_at is not None
        switched_on_at = settings.switched_on_at
    page = client.get(f"/agency/subaccounts/{ready.pk}/").content.decode()
    assert "Usage from before then is never billed to the client." in page
    assert "Phone rebilling switched on" in re.search(r'data-testid="audit-log">.*?</table>', page, re.S).group(0)

    # switching on twice changes nothing; off keeps when it was first on
    client.post(f"/agency/subaccounts/{ready.pk}/rebilling/switch/", {"switch": "on"})
    client.post(f"/agency/subaccounts/{ready.pk}/rebilling/switch/", {"switch": "off"})
    with tenant_context(world.a.agency):
        settings = SubAccountRebilling.objects.get(subaccount=ready)
        assert not settings.switched_on and settings.switched_on_at == switched_on_at
        assert list(AuditEntry.objects.filter(subaccount=ready).order_by("pk").values_list("action", flat=True)) == [
            "rebilling_enabled", "rebilling_disabled"]


def test_overrides_follow_the_agency_default_when_blank(world, ready):
    client = client_for(world.a, world.a.admin)
    # the agency sets SMS to 1.5 for everyone; this client gets calls at 2.25
    assert client.post("/agency/settings/rebilling/", {"sms": "1.5"}).status_code == 302
    assert client.post(f"/agency/subaccounts/{ready.pk}/rebilling/multipliers/", {"calls": "2.25"},
                       **HTMX).status_code == 200
    with tenant_context(world.a.agency):
        assert multipliers_for(subaccount=ready) == {
            "sms": Decimal("1.5"), "mms": Decimal("1.05"), "calls": Decimal("2.25"),
            "phone_numbers": Decimal("1.05"), "other": Decimal("1.05")}
        # another client follows the defaults only
        assert multipliers_for(subaccount=world.a.subaccounts[0])["calls"] == Decimal("1.05")
        assert multipliers_for(subaccount=world.a.subaccounts[0])["sms"] == Decimal("1.5")
        audit = AuditEntry.objects.filter(subaccount=ready, action=AuditEntry.Action.MULTIPLIERS_CHANGED).get()
        assert (audit.before, audit.after) == ({}, {"calls": "2.2500"})
        assert AuditEntry.objects.get(subaccount__isnull=True).after == {"sms": "1.5000"}
    # blanking the override goes back to the default
    client.post(f"/agency/subaccounts/{ready.pk}/rebilling/multipliers/", {"calls": ""}, **HTMX)
    with tenant_context(world.a.agency):
        assert not MultiplierOverride.objects.filter(subaccount=ready).exists()
    # agency B's defaults are its own
    with tenant_context(world.b.agency):
        assert not AgencyMultiplier.objects.exists()


def test_freelancer_shows_multipliers_read_only(world, ready):
    with tenant_context(world.b.agency):
        subaccount = make_subaccount(Shape("lc_phone", "active", True, True), name="Bravo read-only")
    page = client_for(world.b, world.b.admin).get(f"/agency/subaccounts/{subaccount.pk}/").content.decode()
    assert 'data-testid="multipliers-locked"' in page
    assert "rebilled at <strong>1.05x</strong>" in page
    assert "/rebilling/multipliers/" not in page


def test_preview_shows_what_the_client_pays_as_typed(world, ready):
    client = client_for(world.a, world.a.admin)
    preview = client.get(f"/agency/subaccounts/{ready.pk}/rebilling/preview/", {"sms": "1.2345", "calls": "abc"},
                         **HTMX).content.decode()
    sms = re.search(r'<tr data-product="SMS">(.*?)</tr>', preview, re.S).group(1)
    assert "your cost $10.00 → client pays $12.35, you keep $2.35" in sms
    calls = re.search(r'<tr data-product="Calls">(.*?)</tr>', preview, re.S).group(1)
    assert "Enter a multiplier between 1.00 and 10.00." in calls
    mms = re.search(r'<tr data-product="MMS">(.*?)</tr>', preview, re.S).group(1)
    assert "client pays $10.50, you keep $0.50" in mms
    with tenant_context(world.a.agency):
        assert not MultiplierOverride.objects.exists()  # a preview saves nothing


def test_auto_recharge_defaults_and_change(world, ready):
    client = client_for(world.a, world.a.admin)
    page = client.get(f"/agency/subaccounts/{ready.pk}/").content.decode()
    assert 'name="amount" value="10.00"' in page and 'name="threshold" value="10.00"' in page
    assert client.post(f"/agency/subaccounts/{ready.pk}/rebilling/auto-recharge/",
                       {"amount": "25.50", "threshold": "5"}, **HTMX).status_code == 200
    with tenant_context(world.a.agency):
        settings = SubAccountRebilling.objects.get(subaccount=ready)
        assert (settings.auto_recharge_amount, settings.auto_recharge_threshold) == (Decimal("25.5"), Decimal("5"))
        entry = AuditEntry.objects.get(subaccount=ready, action=AuditEntry.Action.AUTO_RECHARGE_CHANGED)
        assert entry.after == {"amount": "25.50", "threshold": "5.00"}


def test_bulk_reports_per_subaccount_and_one_refusal_undoes_nothing(world, ready):
    with tenant_context(world.a.agency):
        no_card = make_subaccount(Shape("lc_phone", "active", True, False), name="Bulk no card")
        also_ready = make_subaccount(Shape("twilio", "active", True, True), name="Bulk ready Twilio")
    client = client_for(world.a, world.a.admin)
    response = client.post("/agency/subaccounts/bulk/", {
        "subaccounts": [ready.pk, no_card.pk, also_ready.pk, 999999], "operation": "switch_on"})
    report = response.content.decode()
    assert response.status_code == 200
    assert "Switch rebilling on: 2 of 4 applied" in report
    rows = dict(re.findall(r'<tr data-subaccount="(\d+)" data-applied="(yes|no)">', report))
    assert rows == {str(ready.pk): "yes", str(no_card.pk): "no", str(also_ready.pk): "yes", "999999": "no"}
    assert "The client has no card on file yet." in report
    assert "No such sub-account." in report
    with tenant_context(world.a.agency):
        assert set(SubAccountRebilling.objects.filter(switched_on=True).values_list("subaccount_id", flat=True)) == {
            ready.pk, also_ready.pk}

    # multipliers in bulk (Pro): only the products given change
    response = client.post("/agency/subaccounts/bulk/", {"subaccounts": [ready.pk, also_ready.pk],
                                                         "operation": "set_multipliers", "multiplier_sms": "1.75"})
    assert "Set multipliers: 2 of 2 applied" in response.content.decode()
    with tenant_context(world.a.agency):
        assert set(MultiplierOverride.objects.values_list("subaccount_id", "product", "multiplier")) == {
            (ready.pk, "sms", Decimal("1.75")), (also_ready.pk, "sms", Decimal("1.75"))}


def test_bulk_needs_a_selection(world, ready):
    response = client_for(world.a, world.a.admin).post("/agency/subaccounts/bulk/", {"operation": "switch_on"})
    assert response.status_code == 400
    assert "Select at least one sub-account." in response.content.decode()
