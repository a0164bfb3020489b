"""An agency may let account users (not only account admins) read their sub-account's See details and CSV,
read-only: default off, agency admins only, audited."""

from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from creditusage.models import DetailsSharing
from subaccounts.models import AuditEntry
from tests.conftest import client_for
from tests.creditusage.helpers import history, ledger, parse_csv

SHARING = "/agency/settings/billing/details-sharing/"


def _sharing_audits(world) -> list[tuple]:
    with tenant_context(world.a.agency):
        return list(AuditEntry.objects.filter(action=AuditEntry.Action.DETAILS_SHARING_CHANGED)
                    .values_list("subaccount_id", "actor", "before", "after"))


def test_by_default_account_users_see_nothing(world, connected, raw_stripe):
    # given the agency never chose
    client = history(world.a, raw_stripe, top_up=False)
    browser = client_for(world.a, world.a.account_users[0])
    # then the account user gets no page, no CSV and no link on their dashboard
    assert browser.get(f"/accounts/{client.pk}/billing/details/").status_code == 404
    assert browser.get(f"/accounts/{client.pk}/billing/details/?format=csv").status_code == 404
    assert 'data-testid="see-details"' not in browser.get(f"/accounts/{client.pk}/").content.decode()


def test_when_allowed_account_users_read_their_own_details_only(world, connected, raw_stripe):
    # given two clients of A with history, and a client of B
    client = history(world.a, raw_stripe)
    other = history(world.a, raw_stripe, index=1, secret="other client's secret", top_up=False)
    history(world.b, raw_stripe, secret="bravo's secret", top_up=False)
    # when A's admin allows account users
    response = client_for(world.a, world.a.admin).post(SHARING, {"account_users_may_view": "on"})
    assert response.status_code == 302
    assert _sharing_audits(world) == [(None, world.a.admin.email, {"account_users_may_view": False},
                                       {"account_users_may_view": True})]
    # then the first client's account user reads its page and CSV, equal to the ledger, read-only
    browser = client_for(world.a, world.a.account_users[0])
    html = browser.get(f"/accounts/{client.pk}/billing/details/").content.decode()
    with tenant_context(world.a.agency):
        expected = ledger(client)
    assert f'data-testid="total-count">{expected["count"]}<' in html
    assert f'data-testid="total-credits">${expected["credits"]:.2f}<' in html
    assert 'data-testid="read-only"' in html
    assert "add-balance" not in html and "<form method=\"post\"" not in html and "Agency cost" not in html
    assert "secret" not in html
    rows = parse_csv(browser.get(f"/accounts/{client.pk}/billing/details/?format=csv"))
    assert len(rows) == expected["count"]
    assert sum(Decimal(r["amount"]) for r in rows) == expected["credits"] + expected["debits"]
    assert 'data-testid="see-details"' in browser.get(f"/accounts/{client.pk}/").content.decode()
    # and still nothing of another sub-account (its page, its CSV), nor Company Billing's write actions
    assert browser.get(f"/accounts/{other.pk}/billing/details/").status_code == 404
    assert browser.get(f"/accounts/{other.pk}/billing/details/?format=csv").status_code == 404
    assert browser.get(f"/accounts/{client.pk}/billing/").status_code == 404
    assert browser.post(f"/accounts/{client.pk}/billing/add-balance/", {"amount": "20.00"}).status_code == 404
    with tenant_context(world.a.agency):
        assert ledger(client) == expected
    # and agency B's account users are not let in by A's choice
    with tenant_context(world.b.agency):
        assert not DetailsSharing.objects.filter(account_users_may_view=True).exists()
    assert client_for(world.b, world.b.account_users[0]).get(
        f"/accounts/{world.b.subaccounts[0].pk}/billing/details/").status_code == 404
    # when the admin switches it off again, the account user is out
    client_for(world.a, world.a.admin).post(SHARING, {})
    assert browser.get(f"/accounts/{client.pk}/billing/details/").status_code == 404
    assert len(_sharing_audits(world)) == 2


@pytest.mark.parametrize("who", ["agency_user", "account_admin", "account_user"])
def test_only_agency_admins_change_it(world, connected, who):
    user = {"agency_user": world.a.agency_user, "account_admin": world.a.account_admins[0],
            "account_user": world.a.account_users[0]}[who]
    assert client_for(world.a, user).post(SHARING, {"account_users_may_view": "on"}).status_code == 404
    with tenant_context(world.a.agency):
        assert not DetailsSharing.objects.filter(account_users_may_view=True).exists()
    assert _sharing_audits(world) == []
