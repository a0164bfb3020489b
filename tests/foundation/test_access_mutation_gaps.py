"""rebill/access.py: agency pages are for agency staff, admin pages for agency admins; everyone else gets 404."""

import pytest
from django_tenants.utils import tenant_context

from subaccounts.models import SubAccount
from tests.conftest import client_for


@pytest.mark.parametrize(("who", "list_status", "new_status"), [
    ("admin", 200, 200),
    ("agency_user", 200, 404),
    ("account_admin", 404, 404),
    ("account_user", 404, 404),
])
def test_agency_pages_answer_by_role(world, db, who, list_status, new_status):
    user = {"admin": world.a.admin, "agency_user": world.a.agency_user,
            "account_admin": world.a.account_admins[0], "account_user": world.a.account_users[0]}[who]
    client = client_for(world.a, user)

    assert client.get("/agency/subaccounts/").status_code == list_status
    assert client.get("/agency/subaccounts/new/").status_code == new_status
    posted = client.post("/agency/subaccounts/new/", {"name": "Sneaky client", "contact_email": "x@sneaky.test"})

    # a denied post creates nothing, here or in agency B
    with tenant_context(world.a.agency):
        created = SubAccount.objects.filter(name="Sneaky client").exists()
    assert created is (new_status == 200)
    if new_status == 404:
        assert posted.status_code == 404
    with tenant_context(world.b.agency):
        assert not SubAccount.objects.filter(name="Sneaky client").exists()


def test_an_agency_admin_of_agency_b_is_nobody_on_agency_a(world, db):
    client = client_for(world.a, None)
    with tenant_context(world.b.agency):
        client.force_login(world.b.admin)
    assert client.get("/agency/subaccounts/").status_code in (302, 404)
