"""Forged or wrong requests change nothing and answer a clear error."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from rebilling.models import AgencyMultiplier, MultiplierOverride, SubAccountRebilling
from subaccounts.models import AuditEntry
from tests.conftest import client_for
from tests.rebilling.conftest import ALL_SHAPES, Shape, make_subaccount

HTMX = {"HTTP_HX_REQUEST": "true"}


def _nothing_changed(agency, subaccount_id: int) -> None:
    with tenant_context(agency):
        assert not MultiplierOverride.objects.filter(subaccount_id=subaccount_id).exists()
        assert not SubAccountRebilling.objects.filter(subaccount_id=subaccount_id, switched_on=True).exists()
        assert not AuditEntry.objects.filter(subaccount_id=subaccount_id).exists()
    connection.set_schema_to_public()


def test_a_freelancer_agency_cannot_post_a_multiplier(world, ready):
    # given agency B on Freelancer and one of its sub-accounts
    with tenant_context(world.b.agency):
        subaccount = make_subaccount(ALL_SHAPES[0], name="Bravo forged")
    client = client_for(world.b, world.b.admin)

    # when its admin forges a multiplier of 3.0, for the sub-account and agency-wide
    response = client.post(f"/agency/subaccounts/{subaccount.pk}/rebilling/multipliers/", {"sms": "3.0"}, **HTMX)
    agency_wide = client.post("/agency/settings/rebilling/", {"sms": "3.0"})

    # then both are refused with the reason and nothing is stored
    assert response.status_code == 400
    assert "locked at 1.05x" in response.content.decode()
    assert agency_wide.status_code == 400
    assert "locked at 1.05x" in agency_wide.content.decode()
    _nothing_changed(world.b.agency, subaccount.pk)
    with tenant_context(world.b.agency):
        assert not AgencyMultiplier.objects.exists()


@pytest.mark.parametrize(("typed", "message"), [
    ("0.5", "between 1.00x and 10.00x"),
    ("0.9999", "between 1.00x and 10.00x"),
    ("11", "between 1.00x and 10.00x"),
    ("10.0001", "between 1.00x and 10.00x"),
    ("1.00005", "at most 4 decimal places"),
    ("abc", "Enter a multiplier such as 1.05."),
    ("NaN", "Enter a multiplier such as 1.05."),
    ("1e3", "Enter a multiplier such as 1.05."),
    ("-1.5", "Enter a multiplier such as 1.05."),
    ("Infinity", "Enter a multiplier such as 1.05."),
])
def test_a_pro_agency_cannot_post_a_multiplier_out_of_bounds(world, ready, typed, message):
    client = client_for(world.a, world.a.admin)
    response = client.post(f"/agency/subaccounts/{ready.pk}/rebilling/multipliers/", {"calls": typed}, **HTMX)
    assert response.status_code == 400
    assert message in response.content.decode()
    _nothing_changed(world.a.agency, ready.pk)

    # the same for the agency-wide default and the bulk action
    assert message in client.post("/agency/settings/rebilling/", {"calls": typed}).content.decode()
    bulk = client.post("/agency/subaccounts/bulk/", {"subaccounts": [ready.pk], "operation": "set_multipliers",
                                                     "multiplier_calls": typed})
    assert bulk.status_code == 400
    assert message in bulk.content.decode()
    with tenant_context(world.a.agency):
        assert not AgencyMultiplier.objects.exists()
    _nothing_changed(world.a.agency, ready.pk)


def test_the_bounds_themselves_are_accepted(world, ready):
    client = client_for(world.a, world.a.admin)
    response = client.post(f"/agency/subaccounts/{ready.pk}/rebilling/multipliers/",
                           {"sms": "1", "mms": "10.0000", "calls": "2.5005"}, **HTMX)
    assert response.status_code == 200
    with tenant_context(world.a.agency):
        stored = dict(MultiplierOverride.objects.filter(subaccount=ready).values_list("product", "multiplier"))
    assert stored == {"sms": Decimal("1.0000"), "mms": Decimal("10.0000"), "calls": Decimal("2.5005")}


def test_an_agency_user_cannot_toggle_or_set_anything(world, ready):
    client = client_for(world.a, world.a.agency_user)
    for url, data in [
        (f"/agency/subaccounts/{ready.pk}/rebilling/switch/", {"switch": "on"}),
        (f"/agency/subaccounts/{ready.pk}/rebilling/multipliers/", {"sms": "2"}),
        (f"/agency/subaccounts/{ready.pk}/rebilling/auto-recharge/", {"amount": "20", "threshold": "5"}),
        ("/agency/subaccounts/bulk/", {"subaccounts": [ready.pk], "operation": "switch_on"}),
        ("/agency/settings/rebilling/", {"sms": "2"}),
    ]:
        assert client.post(url, data).status_code == 404
    assert client.get("/agency/settings/phone-integration/").status_code == 404
    _nothing_changed(world.a.agency, ready.pk)


def test_another_agencys_subaccount_id_is_not_found(world, ready):
    # agency B's admin posts agency A's sub-account id on B's domain: no such sub-account there
    client = client_for(world.b, world.b.admin)
    for url in (f"/agency/subaccounts/{ready.pk}/rebilling/switch/",
                f"/agency/subaccounts/{ready.pk}/rebilling/multipliers/",
                f"/agency/subaccounts/{ready.pk}/rebilling/auto-recharge/"):
        assert client.post(url, {"switch": "on", "sms": "1.05", "amount": "20", "threshold": "5"}).status_code == 404
    assert client.get(f"/agency/subaccounts/{ready.pk}/rebilling/preview/").status_code in (404,)
    report = client.post("/agency/subaccounts/bulk/", {"subaccounts": [ready.pk], "operation": "switch_on"})
    assert "No such sub-account" in report.content.decode()
    _nothing_changed(world.a.agency, ready.pk)


def test_an_account_admin_cannot_reach_manage_client(world, ready):
    account_admin = world.a.account_admins[0]
    client = client_for(world.a, account_admin)
    assert client.get(f"/agency/subaccounts/{world.a.subaccounts[0].pk}/").status_code == 404
    assert client.post(f"/agency/subaccounts/{world.a.subaccounts[0].pk}/rebilling/switch/",
                       {"switch": "on"}).status_code == 404
    with tenant_context(world.a.agency):
        assert not SubAccountRebilling.objects.filter(subaccount=world.a.subaccounts[0]).exists()


def test_switching_on_without_a_card_is_refused(world, ready):
    with tenant_context(world.a.agency):
        no_card = make_subaccount(Shape("lc_phone", "active", has_admin=True, has_card=False), name="No card")
    response = client_for(world.a, world.a.admin).post(f"/agency/subaccounts/{no_card.pk}/rebilling/switch/",
                                                       {"switch": "on"})
    assert response.status_code == 400
    assert "The client has no card on file yet." in response.content.decode()
    _nothing_changed(world.a.agency, no_card.pk)


def test_a_card_saved_on_a_previously_connected_stripe_account_does_not_count(world, ready):
    with tenant_context(world.a.agency):
        old_card = make_subaccount(Shape("lc_phone", "active", has_admin=True, has_card=True), name="Old account card",
                                   account_id="acct_1PreviouslyConnected")
    response = client_for(world.a, world.a.admin).post(f"/agency/subaccounts/{old_card.pk}/rebilling/switch/",
                                                       {"switch": "on"}, **HTMX)
    assert response.status_code == 400
    assert "no card on file" in response.content.decode()
    _nothing_changed(world.a.agency, old_card.pk)


@pytest.mark.parametrize(("amount", "threshold", "message"), [
    ("0.49", "10", "between $0.50"), ("abc", "10", "Enter a number."), ("10", "-1", "between $0"),
    ("10.001", "10", "Ensure that there are no more than 2 decimal places."), ("NaN", "10", "Enter a number."),
    ("100000", "10", "between $0.50 and $10,000"),
])
def test_auto_recharge_refuses_bad_amounts(world, ready, amount, threshold, message):
    response = client_for(world.a, world.a.admin).post(f"/agency/subaccounts/{ready.pk}/rebilling/auto-recharge/",
                                                       {"amount": amount, "threshold": threshold}, **HTMX)
    assert response.status_code == 400
    assert message in response.content.decode()
    with tenant_context(world.a.agency):
        assert not SubAccountRebilling.objects.filter(subaccount=ready).exists()
