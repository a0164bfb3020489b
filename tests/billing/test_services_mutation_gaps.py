"""billing/services.py where the rest of the suite does not look: Stripe objects that are gone without a trace."""

from __future__ import annotations

from django_tenants.utils import tenant_context

from billing.models import BillingProfile
from devservices.localstripe_server import clear_recorded_requests
from subaccounts.models import AuditEntry
from tests.billing.fixtures import ACCT_A, api_requests
from tests.billing.helpers import add_card_on_company_billing, profile_of
from tests.conftest import client_for

MISSING = "cus_NoLongerAtStripe0"


def test_a_customer_stripe_no_longer_knows_at_all_is_forgotten_and_replaced(world, connected, localstripe):
    # given client 1 added a card, and its customer then vanished from the account without a deleted stub
    # (Stripe answers resource_missing, as after the agency deletes its test data)
    subaccount = world.a.subaccounts[0]
    owner = client_for(world.a, world.a.account_admins[0])
    add_card_on_company_billing(owner, subaccount, localstripe)
    with tenant_context(world.a.agency):
        BillingProfile.objects.filter(subaccount=subaccount).update(stripe_customer_id=MISSING)
    clear_recorded_requests(localstripe)

    # when the account admin adds a card again
    response = add_card_on_company_billing(owner, subaccount, localstripe, number="5555555555554444")

    # then it works, on a new customer made with a key that names the one it replaces
    assert "Your card is saved." in response.content.decode()
    profile = profile_of(world.a, subaccount)
    assert profile.stripe_customer_id not in ("", MISSING)
    assert profile.card_last4 == "4444"
    [create] = [r for r in api_requests(localstripe) if r["method"] == "POST" and r["path"] == "/v1/customers"]
    assert create["idempotency_key"] == f"customer:alpha:{profile.pk}:{ACCT_A}:replacing:{MISSING}"
    with tenant_context(world.a.agency):
        forgotten = AuditEntry.objects.get(action=AuditEntry.Action.CUSTOMER_FORGOTTEN)
        assert forgotten.before["stripe_customer_id"] == MISSING
