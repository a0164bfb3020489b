"""Rebilling selectors and services at their edges: what mutation testing showed the page tests do not pin down."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.plans import NextAction, Plan, Product, RebillingState, plan_change_rules
from phone.models import ProviderStatus
from rebilling.models import AgencyMultiplier, MultiplierOverride, SubAccountRebilling
from rebilling.selectors import (
    multiplier_rows,
    multipliers_editable,
    phone_integration_page,
    rebilling_decision_for,
    rebilling_is_switched_on,
    resell_section,
    subaccount_audit,
)
from rebilling.services import (
    agency_multipliers_set,
    auto_recharge_set,
    multipliers_set,
    plan_rules_apply,
    rebilling_bulk,
    rebilling_switch_off,
    rebilling_switch_on,
)
from subaccounts.audit import audit_record
from subaccounts.models import AuditEntry
from tests.rebilling.conftest import ACCT_B, Shape, make_subaccount, set_plan

READY = Shape("lc_phone", ProviderStatus.ACTIVE, True, True)
NO_CARD = Shape("lc_phone", ProviderStatus.ACTIVE, True, False)
NO_PROVIDER = Shape(None, None, True, True)
TWILIO = Shape("twilio", ProviderStatus.ACTIVE, True, True)


# Selectors -------------------------------------------------------------------------------------------------------
def test_switched_on_is_read_per_subaccount(world, ready):
    with tenant_context(world.a.agency):
        other = make_subaccount(READY, name="Other ready")
        assert not rebilling_is_switched_on(subaccount=ready)
        rebilling_switch_on(subaccount=ready, by=world.a.admin)
        assert rebilling_is_switched_on(subaccount=ready)
        assert not rebilling_is_switched_on(subaccount=other)
        rebilling_switch_off(subaccount=ready, by=world.a.admin)
        assert not rebilling_is_switched_on(subaccount=ready)


def test_a_card_saved_on_another_stripe_account_does_not_count(world, ready):
    with tenant_context(world.a.agency):
        elsewhere = make_subaccount(READY, name="Card elsewhere", account_id=ACCT_B)
        decision = rebilling_decision_for(subaccount=elsewhere)
        assert (decision.state, decision.action) == (RebillingState.DISABLED, NextAction.ASK_FOR_CARD)
        assert rebilling_decision_for(subaccount=ready).state == RebillingState.CAN_BE_ENABLED


def test_an_inactive_account_admin_does_not_count(world, ready):
    with tenant_context(world.a.agency):
        admin = ready.memberships.get().user
        admin.is_active = False
        admin.save(update_fields=["is_active"])
        assert rebilling_decision_for(subaccount=ready).action == NextAction.ADD_ACCOUNT_ADMIN


def _names(page) -> list[str]:
    return [row.name for row in page.rows]


def test_search_treats_percent_underscore_and_backslash_as_letters(world, ready):
    with tenant_context(world.a.agency):
        for name in ("Esc 100% club", "Esc 100x club", "Esc a_b", "Esc axb", "Esc back\\slash", "Esc backslash"):
            make_subaccount(NO_CARD, name=name)
        assert _names(phone_integration_page(query="100%")) == ["Esc 100% club"]
        assert _names(phone_integration_page(query="a_b")) == ["Esc a_b"]
        assert _names(phone_integration_page(query="k\\s")) == ["Esc back\\slash"]
        assert _names(phone_integration_page(query="esc AXB")) == ["Esc axb"]
    with tenant_context(world.b.agency):
        assert phone_integration_page(query="Esc").total == 0


def test_sorts_by_provider_and_state_both_ways(world, ready):
    with tenant_context(world.a.agency):
        rebilling_switch_on(subaccount=make_subaccount(READY, name="Srt b on"), by=world.a.admin)
        make_subaccount(NO_PROVIDER, name="Srt c none")
        make_subaccount(TWILIO, name="Srt a twilio")
        make_subaccount(NO_CARD, name="Srt d lc")

        page = phone_integration_page(query="Srt", sort="provider")
        assert _names(page) == ["Srt c none", "Srt b on", "Srt d lc", "Srt a twilio"]
        assert [row.provider_label for row in page.rows] == ["None", "LC Phone", "LC Phone", "Twilio"]
        assert _names(phone_integration_page(query="Srt", sort="-provider")) == [
            "Srt a twilio", "Srt d lc", "Srt b on", "Srt c none"]
        assert _names(phone_integration_page(query="Srt", sort="name")) == [
            "Srt a twilio", "Srt b on", "Srt c none", "Srt d lc"]
        by_state = phone_integration_page(query="Srt", sort="state")
        assert _names(by_state) == ["Srt b on", "Srt a twilio", "Srt c none", "Srt d lc"]
        assert [row.decision.state for row in by_state.rows] == [
            RebillingState.ENABLED, RebillingState.CAN_BE_ENABLED, RebillingState.DISABLED, RebillingState.DISABLED]
        assert _names(phone_integration_page(query="Srt", sort="-state")) == [
            "Srt d lc", "Srt c none", "Srt a twilio", "Srt b on"]
        unknown = phone_integration_page(query="Srt", sort="state; drop table x")
        assert (unknown.sort, _names(unknown)) == ("name", ["Srt a twilio", "Srt b on", "Srt c none", "Srt d lc"])


def test_counts_pages_and_a_state_nobody_is_in(world, ready):
    with tenant_context(world.a.agency):
        for index in range(5):
            make_subaccount(NO_CARD, name=f"Cnt {index}")
        make_subaccount(READY, name="Cnt ready")

        page = phone_integration_page(query="Cnt", per_page=2, page=2)
        assert page.counts == {"enabled": 0, "can_be_enabled": 1, "disabled": 5}
        assert (page.total, page.matching, page.page, page.pages) == (6, 6, 2, 3)
        assert _names(page) == ["Cnt 2", "Cnt 3"]
        assert phone_integration_page(query="Cnt", per_page=2, page=0).page == 1
        assert phone_integration_page(query="Cnt", per_page=2, page=-3).page == 1
        last = phone_integration_page(query="Cnt", per_page=2, page=7)
        assert (last.page, _names(last)) == (3, ["Cnt 4", "Cnt ready"])

        disabled = phone_integration_page(query="Cnt", state="disabled", per_page=4)
        assert (disabled.state, disabled.matching, disabled.pages, disabled.total) == ("disabled", 5, 2, 6)
        assert _names(disabled) == ["Cnt 0", "Cnt 1", "Cnt 2", "Cnt 3"]
        nobody = phone_integration_page(query="Cnt", state="enabled")
        assert (nobody.rows, nobody.matching, nobody.pages, nobody.page) == ([], 0, 1, 1)
        bogus = phone_integration_page(query="Cnt", state="bogus")
        assert (bogus.state, bogus.matching) == ("", 6)

        nothing = phone_integration_page(query="No such name at all", sort="state")
        assert (nothing.rows, nothing.total, nothing.pages) == ([], 0, 1)


def test_multiplier_rows_show_override_default_and_in_force(world, ready):
    with tenant_context(world.a.agency):
        agency_multipliers_set(multipliers={"sms": Decimal("1.5"), "calls": Decimal("2")}, by=world.a.admin)
        multipliers_set(subaccount=ready, multipliers={"calls": Decimal("3")}, by=world.a.admin)
        rows = {row.product: row for row in multiplier_rows(subaccount=ready)}
        assert list(rows) == list(Product)
        assert (rows[Product.CALLS].override, rows[Product.CALLS].default, rows[Product.CALLS].in_force) == (
            Decimal("3"), Decimal("2"), Decimal("3"))
        assert (rows[Product.SMS].override, rows[Product.SMS].default, rows[Product.SMS].in_force) == (
            None, Decimal("1.5"), Decimal("1.5"))
        assert (rows[Product.MMS].override, rows[Product.MMS].default) == (None, Decimal("1.0500"))
        assert rows[Product.OTHER].label == "Other carrier fees"
        agency_level = {row.product: row for row in multiplier_rows(subaccount=None)}
        assert agency_level[Product.CALLS].override is None
        assert agency_level[Product.CALLS].in_force == Decimal("2")
        assert multipliers_editable()
    with tenant_context(world.b.agency):
        assert not multipliers_editable()
        assert {row.in_force for row in multiplier_rows(subaccount=None)} == {Decimal("1.0500")}


def test_no_multipliers_on_starter(world, ready):
    agency = set_plan(world.a.agency, Plan.STARTER)
    with tenant_context(agency):
        assert multiplier_rows(subaccount=ready) == []
        assert not multipliers_editable()
        section = resell_section(subaccount=ready)
        assert (section.rebilling_available, section.multipliers_editable, section.locked_multiplier) == (
            False, False, None)


def test_the_resell_section_and_its_audit_newest_first(world, ready):
    with tenant_context(world.a.agency):
        other = make_subaccount(READY, name="Audit other")
        audit_record(subaccount=other, actor="x@alpha.test", action=AuditEntry.Action.REBILLING_ENABLED)
        for index in range(21):
            audit_record(subaccount=ready if index % 3 else None, actor=f"{index}@alpha.test",
                         action=AuditEntry.Action.MULTIPLIERS_CHANGED)
        entries = list(subaccount_audit(subaccount=ready))
        assert [entry.actor for entry in entries] == [f"{index}@alpha.test" for index in reversed(range(21))]

        section = resell_section(subaccount=ready)
        assert [entry.actor for entry in section.audit] == [f"{index}@alpha.test" for index in range(20, 0, -1)]
        assert section.subaccount == ready
        assert section.decision.state == RebillingState.CAN_BE_ENABLED
        assert not section.settings.switched_on and section.settings.pk is None
        assert [row.product for row in section.multipliers] == list(Product)
        assert (section.multipliers_editable, section.locked_multiplier, section.rebilling_available) == (
            True, None, True)
        rebilling_switch_on(subaccount=ready, by=world.a.admin)
        assert resell_section(subaccount=ready).settings.switched_on
    with tenant_context(world.b.agency):
        section = resell_section(subaccount=make_subaccount(READY, name="Bravo section"))
        assert (section.multipliers_editable, section.locked_multiplier) == (False, Decimal("1.0500"))
        assert section.audit == []


# Services --------------------------------------------------------------------------------------------------------
def test_only_agency_admins_change_rebilling_and_nothing_changes_otherwise(world, ready):
    with tenant_context(world.a.agency):
        for attempt in (
            lambda: rebilling_switch_on(subaccount=ready, by=world.a.agency_user),
            lambda: rebilling_switch_off(subaccount=ready, by=world.a.agency_user),
            lambda: multipliers_set(subaccount=ready, multipliers={"sms": Decimal("2")}, by=world.a.agency_user),
            lambda: agency_multipliers_set(multipliers={"sms": Decimal("2")}, by=world.a.agency_user),
            lambda: auto_recharge_set(subaccount=ready, amount=Decimal("20"), threshold=Decimal("5"),
                                      by=world.a.agency_user),
            lambda: rebilling_bulk(subaccount_ids=[ready.pk], operation="switch_on", by=world.a.agency_user),
        ):
            with pytest.raises(PermissionError, match="^Only agency admins change phone rebilling.$"):
                attempt()
        assert not SubAccountRebilling.objects.exists()
        assert not MultiplierOverride.objects.exists() and not AgencyMultiplier.objects.exists()
        assert not AuditEntry.objects.filter(subaccount__isnull=True).exists()
        assert not AuditEntry.objects.filter(subaccount=ready).exists()


def test_switching_on_and_off_records_one_audit_row_each(world, ready):
    with tenant_context(world.a.agency):
        first = rebilling_switch_on(subaccount=ready, by=world.a.admin)
        again = rebilling_switch_on(subaccount=ready, by=world.a.admin)
        assert again.switched_on_at == first.switched_on_at and again.switched_on_by == "admin@alpha.test"
        entry = AuditEntry.objects.get(subaccount=ready)
        assert (entry.actor, entry.action, entry.before) == (
            "admin@alpha.test", AuditEntry.Action.REBILLING_ENABLED, {"switched_on": False})
        assert entry.after == {"switched_on": True, "switched_on_at": first.switched_on_at.isoformat()}

        off = rebilling_switch_off(subaccount=ready, by=world.a.admin)
        rebilling_switch_off(subaccount=ready, by=world.a.admin)
        stored = SubAccountRebilling.objects.get(subaccount=ready)
        assert not stored.switched_on and stored.switched_off_at == off.switched_off_at is not None
        entry = AuditEntry.objects.filter(subaccount=ready).latest("pk")
        assert (entry.actor, entry.action, entry.before, entry.after) == (
            "admin@alpha.test", AuditEntry.Action.REBILLING_DISABLED, {"switched_on": True}, {"switched_on": False})
        assert AuditEntry.objects.filter(subaccount=ready).count() == 2


def test_switching_on_a_blocked_subaccount_says_why_and_changes_nothing(world, ready):
    with tenant_context(world.a.agency):
        no_card = make_subaccount(NO_CARD, name="Blocked")
        with pytest.raises(ValidationError) as refused:
            rebilling_switch_on(subaccount=no_card, by=world.a.admin)
        assert refused.value.messages == ["The client has no card on file yet."]
        assert not SubAccountRebilling.objects.filter(subaccount=no_card).exists()
        assert not AuditEntry.objects.filter(subaccount=no_card).exists()


def test_multipliers_on_plans_that_lock_them_or_have_none_are_refused(world, ready):
    with tenant_context(world.b.agency):
        bravo = make_subaccount(READY, name="Bravo locked")
        for attempt in (lambda: multipliers_set(subaccount=bravo, multipliers={"sms": Decimal("2")}, by=world.b.admin),
                        lambda: agency_multipliers_set(multipliers={"sms": Decimal("2")}, by=world.b.admin)):
            with pytest.raises(ValidationError) as refused:
                attempt()
            assert refused.value.messages == ["On the Freelancer plan every multiplier is locked at 1.05x."]
        assert not MultiplierOverride.objects.exists() and not AgencyMultiplier.objects.exists()
    agency = set_plan(world.a.agency, Plan.STARTER)
    with tenant_context(agency):
        with pytest.raises(ValidationError) as refused:
            multipliers_set(subaccount=ready, multipliers={"sms": Decimal("2")}, by=world.a.admin)
        assert refused.value.messages == ["Your plan does not include phone rebilling. Upgrade to Freelancer or Pro."]
        assert not MultiplierOverride.objects.exists()


def test_bad_multipliers_are_refused_per_product_and_nothing_is_stored(world, ready):
    with tenant_context(world.a.agency):
        with pytest.raises(ValidationError) as refused:
            multipliers_set(subaccount=ready, by=world.a.admin, multipliers={
                "sms": Decimal("0.9999"), "fax": Decimal("2"), "calls": Decimal("2"), "mms": None})
        assert refused.value.message_dict == {"sms": ["Choose a multiplier between 1.00x and 10.00x."],
                                              "fax": ["Unknown product 'fax'."]}
        with pytest.raises(ValidationError) as refused:
            agency_multipliers_set(by=world.a.admin, multipliers={"other": Decimal("1.00001")})
        assert refused.value.message_dict == {"other": ["Use at most 4 decimal places."]}
        assert not MultiplierOverride.objects.exists() and not AgencyMultiplier.objects.exists()
        assert not AuditEntry.objects.exists()


def test_clearing_a_clients_multiplier_leaves_other_clients_own(world, ready):
    with tenant_context(world.a.agency):
        # given two clients with their own SMS multiplier
        other = make_subaccount(READY, name="Other client")
        for subaccount, value in ((ready, Decimal("2")), (other, Decimal("3"))):
            multipliers_set(subaccount=subaccount, multipliers={"sms": value}, by=world.a.admin)

        # when one goes back to the agency's default
        multipliers_set(subaccount=ready, multipliers={"sms": None}, by=world.a.admin)

        # then the other keeps its own
        assert list(MultiplierOverride.objects.values_list("subaccount", "product", "multiplier")) == [
            (other.pk, "sms", Decimal("3"))]


def test_multipliers_audit_only_real_changes(world, ready):
    with tenant_context(world.a.agency):
        assert multipliers_set(subaccount=ready, multipliers={"sms": Decimal("2"), "mms": Decimal("1.25")},
                               by=world.a.admin) == {"sms": Decimal("2"), "mms": Decimal("1.25")}
        assert multipliers_set(subaccount=ready, multipliers={"sms": Decimal("2.0000")}, by=world.a.admin) == {
            "sms": Decimal("2"), "mms": Decimal("1.25")}
        assert multipliers_set(subaccount=ready, multipliers={"mms": None}, by=world.a.admin) == {"sms": Decimal("2")}
        entries = list(AuditEntry.objects.filter(subaccount=ready).order_by("pk"))
        assert [(e.action, e.actor, e.before, e.after) for e in entries] == [
            (AuditEntry.Action.MULTIPLIERS_CHANGED, "admin@alpha.test", {}, {"mms": "1.2500", "sms": "2.0000"}),
            (AuditEntry.Action.MULTIPLIERS_CHANGED, "admin@alpha.test", {"mms": "1.2500", "sms": "2.0000"},
             {"sms": "2.0000"}),
        ]

        assert agency_multipliers_set(multipliers={"calls": Decimal("3")}, by=world.a.admin) == {"calls": Decimal("3")}
        agency_multipliers_set(multipliers={"calls": Decimal("3")}, by=world.a.admin)
        assert agency_multipliers_set(multipliers={"calls": None}, by=world.a.admin) == {}
        entries = list(AuditEntry.objects.filter(subaccount__isnull=True).order_by("pk"))
        assert [(e.action, e.actor, e.before, e.after) for e in entries] == [
            (AuditEntry.Action.AGENCY_MULTIPLIERS_CHANGED, "admin@alpha.test", {}, {"calls": "3.0000"}),
            (AuditEntry.Action.AGENCY_MULTIPLIERS_CHANGED, "admin@alpha.test", {"calls": "3.0000"}, {}),
        ]
    with tenant_context(world.b.agency):
        assert not AuditEntry.objects.filter(action=AuditEntry.Action.MULTIPLIERS_CHANGED).exists()


@pytest.mark.parametrize(("amount", "threshold", "errors"), [
    ("0.49", "10", {"amount": ["Choose an amount between $0.50 and $10,000."]}),
    ("10000.01", "10", {"amount": ["Choose an amount between $0.50 and $10,000."]}),
    ("NaN", "10", {"amount": ["Choose an amount between $0.50 and $10,000."]}),
    ("10.001", "10", {"amount": ["Use whole cents."]}),
    ("10", "-0.01", {"threshold": ["Choose a threshold between $0 and $10,000."]}),
    ("10", "10000.01", {"threshold": ["Choose a threshold between $0 and $10,000."]}),
    ("10", "Infinity", {"threshold": ["Choose a threshold between $0 and $10,000."]}),
    ("10", "5.005", {"threshold": ["Use whole cents."]}),
    ("0", "-1", {"amount": ["Choose an amount between $0.50 and $10,000."],
                 "threshold": ["Choose a threshold between $0 and $10,000."]}),
])
def test_auto_recharge_refuses_bad_amounts_and_changes_nothing(world, ready, amount, threshold, errors):
    with tenant_context(world.a.agency):
        with pytest.raises(ValidationError) as refused:
            auto_recharge_set(subaccount=ready, amount=Decimal(amount), threshold=Decimal(threshold), by=world.a.admin)
        assert refused.value.message_dict == errors
        assert not SubAccountRebilling.objects.exists()
        assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(("amount", "threshold"), [("0.50", "0"), ("10000", "10000"), ("0.5", "0.01")])
def test_auto_recharge_accepts_the_bounds(world, ready, amount, threshold):
    with tenant_context(world.a.agency):
        settings = auto_recharge_set(subaccount=ready, amount=Decimal(amount), threshold=Decimal(threshold),
                                     by=world.a.admin)
        stored = SubAccountRebilling.objects.get(subaccount=ready)
        assert (stored.auto_recharge_amount, stored.auto_recharge_threshold) == (Decimal(amount), Decimal(threshold))
        assert settings.pk == stored.pk
        entry = AuditEntry.objects.get(subaccount=ready)
        assert (entry.action, entry.actor, entry.before, entry.after) == (
            AuditEntry.Action.AUTO_RECHARGE_CHANGED, "admin@alpha.test", {"amount": "10.00", "threshold": "10.00"},
            {"amount": f"{Decimal(amount):.2f}", "threshold": f"{Decimal(threshold):.2f}"})


def test_auto_recharge_unchanged_writes_no_audit(world, ready):
    with tenant_context(world.a.agency):
        auto_recharge_set(subaccount=ready, amount=Decimal("10.00"), threshold=Decimal("10"), by=world.a.admin)
        assert not AuditEntry.objects.exists()


def test_bulk_reports_each_subaccount_in_the_order_given(world, ready):
    with tenant_context(world.a.agency):
        second = make_subaccount(READY, name="Bulk second")
        outcomes = rebilling_bulk(subaccount_ids=[second.pk, 999999, ready.pk], operation="switch_on",
                                  by=world.a.admin)
        assert [(o.subaccount_id, o.name, o.applied, o.message) for o in outcomes] == [
            (second.pk, "Bulk second", True, "Rebilling switched on."),
            (999999, "#999999", False, "No such sub-account."),
            (ready.pk, "Ready client", True, "Rebilling switched on."),
        ]
        outcomes = rebilling_bulk(subaccount_ids=[ready.pk], operation="switch_off", by=world.a.admin)
        assert [(o.applied, o.message) for o in outcomes] == [(True, "Rebilling switched off.")]
        assert not rebilling_is_switched_on(subaccount=ready) and rebilling_is_switched_on(subaccount=second)

        outcomes = rebilling_bulk(subaccount_ids=[ready.pk], operation="set_multipliers", by=world.a.admin,
                                  multipliers={"sms": Decimal("1.5")})
        assert [(o.applied, o.message) for o in outcomes] == [(True, "Multipliers set.")]
        assert [(o.subaccount_id, o.name, o.applied, o.message) for o in rebilling_bulk(
            subaccount_ids=[ready.pk], operation="set_multipliers", by=world.a.admin)] == [
            (ready.pk, "Ready client", False, "Enter at least one multiplier.")]
        assert [(o.applied, o.message) for o in rebilling_bulk(
            subaccount_ids=[ready.pk], operation="delete", by=world.a.admin)] == [(False, "Unknown action 'delete'.")]
        bad = rebilling_bulk(subaccount_ids=[ready.pk], operation="set_multipliers", by=world.a.admin,
                             multipliers={"sms": Decimal("11"), "fax": Decimal("2")})
        assert [(o.applied, o.message) for o in bad] == [
            (False, "Choose a multiplier between 1.00x and 10.00x. Unknown product 'fax'.")]
        assert dict(MultiplierOverride.objects.values_list("product", "multiplier")) == {"sms": Decimal("1.5")}
    with tenant_context(world.b.agency):
        assert [(o.name, o.applied) for o in rebilling_bulk(subaccount_ids=[ready.pk], operation="switch_on",
                                                            by=world.b.admin)] == [(f"#{ready.pk}", False)]


def test_plan_rules_apply_reports_each_subaccount_by_name(world, ready):
    with tenant_context(world.a.agency):
        twilio = make_subaccount(TWILIO, name="apple twilio")
        lc = make_subaccount(READY, name="Zebra lc")
        for subaccount in (ready, twilio, lc):
            rebilling_switch_on(subaccount=subaccount, by=world.a.admin)
        multipliers_set(subaccount=lc, multipliers={"sms": Decimal("2"), "calls": Decimal("3")}, by=world.a.admin)
        multipliers_set(subaccount=twilio, multipliers={"mms": Decimal("1.5")}, by=world.a.admin)
        agency_multipliers_set(multipliers={"other": Decimal("4")}, by=world.a.admin)
        AuditEntry.objects.all().delete()

        effects = plan_rules_apply(rules=plan_change_rules(old_plan="pro", new_plan="freelancer"), actor="staff")

        assert [(e.subaccount_id, e.name, e.changes) for e in effects] == [
            (twilio.pk, "apple twilio", ["multipliers are now locked at 1.05x", "rebilling switched off"]),
            (lc.pk, "Zebra lc", ["multipliers are now locked at 1.05x"]),
        ]
        assert not MultiplierOverride.objects.exists() and not AgencyMultiplier.objects.exists()
        assert rebilling_is_switched_on(subaccount=ready) and rebilling_is_switched_on(subaccount=lc)
        assert not rebilling_is_switched_on(subaccount=twilio)
        agency_entry = AuditEntry.objects.get(subaccount__isnull=True)
        assert (agency_entry.action, agency_entry.actor, agency_entry.before, agency_entry.after) == (
            AuditEntry.Action.AGENCY_MULTIPLIERS_CHANGED, "staff", {"other": "4.0000"},
            {"why": "Plan changed from Pro to Freelancer"})
        lc_entry = AuditEntry.objects.get(subaccount=lc)
        assert (lc_entry.action, lc_entry.actor, lc_entry.before, lc_entry.after) == (
            AuditEntry.Action.PLAN_RULES_APPLIED, "staff", {"calls": "3.0000", "sms": "2.0000"},
            {"multipliers": "locked at 1.05x", "why": "Plan changed from Pro to Freelancer"})
        off = AuditEntry.objects.get(subaccount=twilio, action=AuditEntry.Action.REBILLING_DISABLED)
        assert (off.actor, off.before, off.after) == (
            "staff", {"switched_on": True}, {"switched_on": False, "why": "Plan changed from Pro to Freelancer"})

        # then to Starter: everything still on stops, and nothing is left to reset
        effects = plan_rules_apply(rules=plan_change_rules(old_plan="freelancer", new_plan="starter"), actor="staff")
        assert [(e.name, e.changes) for e in effects] == [
            ("Ready client", ["rebilling switched off"]), ("Zebra lc", ["rebilling switched off"])]
        assert AuditEntry.objects.filter(subaccount__isnull=True).count() == 1
        assert not SubAccountRebilling.objects.filter(switched_on=True).exists()


def test_plan_rules_apply_to_pro_changes_nothing(world, ready):
    with tenant_context(world.a.agency):
        rebilling_switch_on(subaccount=ready, by=world.a.admin)
        multipliers_set(subaccount=ready, multipliers={"sms": Decimal("2")}, by=world.a.admin)
        count = AuditEntry.objects.count()
        assert plan_rules_apply(rules=plan_change_rules(old_plan="pro", new_plan="pro"), actor="staff") == []
        assert rebilling_is_switched_on(subaccount=ready) and MultiplierOverride.objects.exists()
        assert AuditEntry.objects.count() == count


def test_plan_rules_apply_reads_names_in_the_same_queries_and_audits_in_subaccount_order(world, ready):
    with tenant_context(world.a.agency):
        # given overrides whose product order is the reverse of their sub-accounts' order
        first, second, third = ready, make_subaccount(TWILIO, name="Second"), make_subaccount(READY, name="Third")
        for subaccount, product in ((first, "sms"), (second, "other"), (third, "calls")):
            multipliers_set(subaccount=subaccount, multipliers={product: Decimal("2")}, by=world.a.admin)
            rebilling_switch_on(subaccount=subaccount, by=world.a.admin)

        with CaptureQueriesContext(connection) as queries:
            effects = plan_rules_apply(rules=plan_change_rules(old_plan="pro", new_plan="starter"), actor="staff")

        # then one audit row per sub-account, in sub-account order, and no sub-account was read row by row
        assert [e.name for e in effects] == ["Ready client", "Second", "Third"]
        applied = AuditEntry.objects.filter(action=AuditEntry.Action.PLAN_RULES_APPLIED).order_by("pk")
        assert [entry.subaccount_id for entry in applied] == [first.pk, second.pk, third.pk]
        lazy = [q["sql"] for q in queries.captured_queries
                if q["sql"].startswith('SELECT "subaccounts_subaccount"') and "LIMIT 21" in q["sql"]]
        assert lazy == []


def test_plan_rules_apply_lists_subaccounts_by_name_ignoring_case(world, ready):
    with tenant_context(world.a.agency):
        # given, in order of creation: "Zed", "ab_c", "abc" (by case-folded name: "ab_c", "abc", "zed")
        for name in ("Zed", "ab_c", "abc"):
            multipliers_set(subaccount=make_subaccount(READY, name=name), multipliers={"sms": Decimal("2")},
                            by=world.a.admin)

        effects = plan_rules_apply(rules=plan_change_rules(old_plan="pro", new_plan="freelancer"), actor="staff")

        assert [e.name for e in effects] == ["ab_c", "abc", "Zed"]


def test_the_resell_section_before_any_setting_is_saved_shows_the_overrides(world, ready):
    with tenant_context(world.a.agency):
        MultiplierOverride.objects.create(subaccount=ready, product="sms", multiplier=Decimal("2.5"))
        section = resell_section(subaccount=ready)
        assert section.settings.pk is None and section.settings.subaccount == ready
        assert section.settings.auto_recharge_amount == Decimal("10")
        sms = next(row for row in section.multipliers if row.product == Product.SMS)
        assert (sms.override, sms.in_force) == (Decimal("2.5"), Decimal("2.5"))


def test_the_audit_is_newest_first_by_time_then_by_id(world, ready):
    with tenant_context(world.a.agency):
        first, second, third = (audit_record(subaccount=ready, actor=f"{n}@alpha.test",
                                             action=AuditEntry.Action.MULTIPLIERS_CHANGED) for n in range(3))
        moment = timezone.now()
        # the oldest row carries the latest time (e.g. a clock step); the other two share one instant
        AuditEntry.objects.filter(pk=first.pk).update(created_at=moment + timedelta(minutes=1))
        AuditEntry.objects.filter(pk__in=[second.pk, third.pk]).update(created_at=moment)
        assert [entry.pk for entry in subaccount_audit(subaccount=ready)] == [first.pk, third.pk, second.pk]


def test_the_page_with_no_arguments_lists_every_subaccount_by_name(world, ready):
    with tenant_context(world.a.agency):
        page = phone_integration_page()
        assert (page.state, page.query, page.sort, page.page) == ("", "", "name", 1)
        assert _names(page) == ["Alpha Agency client 1", "Alpha Agency client 2", "Ready client"]


def test_sorted_by_state_a_page_runs_on_into_the_next_state_and_a_state_filter_keeps_to_its_own(world, ready):
    with tenant_context(world.a.agency):
        # given 1 sub-account switched on, 2 that can be, 3 without a card
        rebilling_switch_on(subaccount=make_subaccount(READY, name="Fs on"), by=world.a.admin)
        for name in ("Fs can a", "Fs can b"):
            make_subaccount(READY, name=name)
        for name in ("Fs off a", "Fs off b", "Fs off c"):
            make_subaccount(NO_CARD, name=name)

        # then pages sorted by state fill up from the next state, wherever the page starts
        def by_state(**kwargs) -> list[str]:
            return _names(phone_integration_page(query="Fs", sort="state", **kwargs))

        assert by_state(per_page=2) == ["Fs on", "Fs can a"]
        assert by_state(per_page=2, page=2) == ["Fs can b", "Fs off a"]
        assert by_state(per_page=2, page=3) == ["Fs off b", "Fs off c"]
        assert by_state(per_page=3) == ["Fs on", "Fs can a", "Fs can b"]
        assert by_state(per_page=4, page=2) == ["Fs off b", "Fs off c"]

        # and filtered to one state, sorted by state either way, only that state's sub-accounts, page by page
        disabled = phone_integration_page(query="Fs", state="disabled", sort="state", per_page=2)
        assert (_names(disabled), disabled.matching, disabled.pages) == (["Fs off a", "Fs off b"], 3, 2)
        assert _names(phone_integration_page(query="Fs", state="disabled", sort="state", per_page=2, page=2)) == [
            "Fs off c"]
        assert _names(phone_integration_page(query="Fs", state="disabled", sort="-state", per_page=2)) == [
            "Fs off c", "Fs off b"]
        assert _names(phone_integration_page(query="Fs", state="can_be_enabled", sort="-state")) == [
            "Fs can b", "Fs can a"]
        assert _names(phone_integration_page(query="Fs", state="enabled", sort="-state")) == ["Fs on"]
