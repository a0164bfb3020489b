"""The data migrations that moved rows between apps, run on an agency schema holding rows of the old shape: billing's
and the phone provider's audit tables merged into the one sub-account audit log (every row kept, with its actor, action,
before/after and time), and the rebilling switch moved off the billing profile (on, and billing from the deploy on)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db

SCHEMA = "audit_merge_migration"
BEFORE_THE_MERGE = [("subaccounts", "0001_initial"), ("billing", "0001_initial"), ("phone", "0005_provider_read_marks")]
AFTER_THE_MERGE = [("subaccounts", "0004_provider_changes_join_the_audit_log"),
                   ("billing", "0002_audit_moves_to_subaccount_log"),
                   ("phone", "0006_provider_changes_move_to_audit_log")]


@pytest.fixture
def old_schema():
    """A fresh agency schema (rolled back with the test's transaction) for the test to migrate."""
    previous = connection.schema_name
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{SCHEMA}"')
    connection.set_schema(SCHEMA, include_public=False)
    try:
        yield MigrationExecutor(connection)
    finally:
        connection.set_schema(previous) if previous != "public" else connection.set_schema_to_public()


def _migrate(executor: MigrationExecutor, targets):
    with connection.cursor() as cursor:  # as if the rows were committed before the deploy: no check left pending
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def test_old_audit_rows_join_the_one_log_with_their_time_and_order(old_schema):
    old_schema.migrate(BEFORE_THE_MERGE)
    apps = old_schema.loader.project_state(BEFORE_THE_MERGE).apps
    SubAccount = apps.get_model("subaccounts", "SubAccount")
    User = apps.get_model("people", "User")
    BillingAuditEntry = apps.get_model("billing", "BillingAuditEntry")
    ProviderChange = apps.get_model("phone", "ProviderChange")

    first = SubAccount.objects.create(name="First client")
    second = SubAccount.objects.create(name="Second client")
    admin = User.objects.create(email="admin@agency.test", role="agency_admin")
    card_at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    BillingAuditEntry.objects.create(subaccount=first, actor="owner@client.test", action="card_set",
                                     before={}, after={"last4": "4242"})
    BillingAuditEntry.objects.filter(subaccount=first).update(created_at=card_at)
    by_person = ProviderChange.objects.create(subaccount=second, by=admin, action="provider_set",
                                              before={}, after={"provider": "twilio"})
    by_twilio = ProviderChange.objects.create(subaccount=second, by=None, action="credentials_rejected",
                                              before={"status": "active"}, after={"status": "credentials_invalid"})
    ProviderChange.objects.filter(pk=by_person.pk).update(at=datetime(2026, 3, 2, tzinfo=UTC))
    ProviderChange.objects.filter(pk=by_twilio.pk).update(at=datetime(2026, 3, 3, tzinfo=UTC))

    apps = _migrate(old_schema, AFTER_THE_MERGE)
    AuditEntry = apps.get_model("subaccounts", "AuditEntry")

    rows = list(AuditEntry.objects.order_by("created_at").values_list(
        "subaccount_id", "actor", "action", "before", "after", "created_at"))
    assert rows == [
        (first.pk, "owner@client.test", "card_set", {}, {"last4": "4242"}, card_at),
        (second.pk, "admin@agency.test", "provider_set", {}, {"provider": "twilio"}, datetime(2026, 3, 2, tzinfo=UTC)),
        (second.pk, "Twilio", "credentials_rejected", {"status": "active"}, {"status": "credentials_invalid"},
         datetime(2026, 3, 3, tzinfo=UTC)),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
                       "AND table_name IN ('billing_billingauditentry', 'phone_providerchange')", [SCHEMA])
        assert cursor.fetchone() == (0,), "the old tables are gone once their rows have moved"


def test_a_switch_on_the_billing_profile_carries_over_and_bills_from_the_deploy_on(old_schema):
    before = [("billing", "0002_audit_moves_to_subaccount_log"), ("rebilling", "0001_initial")]
    old_schema.migrate(before)
    apps = old_schema.loader.project_state(before).apps
    SubAccount = apps.get_model("subaccounts", "SubAccount")
    BillingProfile = apps.get_model("billing", "BillingProfile")
    on, off = SubAccount.objects.create(name="Rebilled"), SubAccount.objects.create(name="Not rebilled")
    BillingProfile.objects.create(subaccount=on, rebilling_enabled=True)
    BillingProfile.objects.create(subaccount=off, rebilling_enabled=False)
    deployed_at = timezone.now()

    apps = _migrate(old_schema, [("billing", "0003_rebilling_switch_moves_to_rebilling"),
                                 ("rebilling", "0004_switched_on_says_since_when")])
    SubAccountRebilling = apps.get_model("rebilling", "SubAccountRebilling")

    carried = SubAccountRebilling.objects.get(subaccount_id=on.pk)
    assert carried.switched_on and carried.switched_on_at >= deployed_at
    assert not SubAccountRebilling.objects.filter(subaccount_id=off.pk, switched_on=True).exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        SubAccountRebilling.objects.filter(pk=carried.pk).update(switched_on_at=None)
