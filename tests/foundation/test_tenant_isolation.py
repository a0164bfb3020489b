"""Agency A never sees agency B; a client never sees another client; staff roles don't leak into clients."""

import pytest
from django.urls import reverse
from django_tenants.utils import tenant_context

from subaccounts.models import Membership, SubAccount
from subaccounts.selectors import subaccounts_for_agency_staff, subaccounts_for_member
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def agency_pages(subaccount_id: int) -> list[str]:
    return [
        reverse("subaccounts:list"),
        reverse("subaccounts:create"),
        reverse("subaccounts:manage", args=[subaccount_id]),
        reverse("subaccounts:edit", args=[subaccount_id]),
    ]


def test_agency_admin_sees_only_own_subaccounts_on_every_page(world):
    # given
    client = client_for(world.a, world.a.admin)
    # when
    listing = client.get(reverse("subaccounts:list")).content.decode()
    # then
    for subaccount in world.a.subaccounts:
        assert subaccount.name in listing
    for subaccount in world.b.subaccounts:
        assert subaccount.name not in listing
    assert "Bravo" not in listing
    for subaccount in world.a.subaccounts:
        page = client.get(reverse("subaccounts:manage", args=[subaccount.pk])).content.decode()
        assert subaccount.name in page and "Bravo" not in page


def test_queries_in_one_schema_never_return_the_other_agencys_rows(world):
    with tenant_context(world.a.agency):
        names_a = set(SubAccount.objects.values_list("name", flat=True))
        staff_view = set(subaccounts_for_agency_staff(user=world.a.admin).values_list("name", flat=True))
    with tenant_context(world.b.agency):
        names_b = set(SubAccount.objects.values_list("name", flat=True))
    assert names_a == staff_view == {s.name for s in world.a.subaccounts}
    assert names_b == {s.name for s in world.b.subaccounts}
    assert not names_a & names_b


def test_ids_of_the_other_agency_are_404_even_when_the_number_exists_here(world):
    # Both schemas number their sub-accounts from 1, so B's ids exist in A — as A's own rows.
    client = client_for(world.a, world.a.admin)
    with tenant_context(world.b.agency):
        b_ids = list(SubAccount.objects.values_list("pk", flat=True))
    missing_id = max(b_ids) + 1000
    assert client.get(reverse("subaccounts:manage", args=[missing_id])).status_code == 404
    page = client.get(reverse("subaccounts:manage", args=[b_ids[0]])).content.decode()
    assert "Bravo" not in page


def test_account_user_gets_404_on_other_subaccount_and_on_agency_pages(world):
    # given an account user of sub-account A1
    own, other = world.a.subaccounts
    client = client_for(world.a, world.a.account_users[0])
    # then own dashboard works
    assert client.get(reverse("subaccounts:dashboard", args=[own.pk])).status_code == 200
    # and everything else is 404
    assert client.get(reverse("subaccounts:dashboard", args=[other.pk])).status_code == 404
    for url in agency_pages(own.pk) + agency_pages(other.pk):
        assert client.get(url).status_code == 404, url
    response = client.post(
        reverse("subaccounts:member-add", args=[other.pk]),
        {"email": "sneaky@example.test", "role": "account_admin", "password": "Sneaky-pass-123"},
    )
    assert response.status_code == 404
    with tenant_context(world.a.agency):
        assert not Membership.objects.filter(user__email="sneaky@example.test").exists()


def test_account_admin_sees_only_own_subaccount(world):
    client = client_for(world.a, world.a.account_admins[0])
    home = client.get("/", follow=True)
    page = home.content.decode()
    assert world.a.subaccounts[0].name in page
    assert world.a.subaccounts[1].name not in page
    assert client.get(reverse("subaccounts:dashboard", args=[world.a.subaccounts[1].pk])).status_code == 404
    with tenant_context(world.a.agency):
        assert list(subaccounts_for_member(user=world.a.account_admins[0])) == [world.a.subaccounts[0]]


def test_agency_admin_is_never_an_account_admin_and_cannot_make_itself_one(world):
    client = client_for(world.a, world.a.admin)
    subaccount = world.a.subaccounts[0]
    assert client.get(reverse("subaccounts:dashboard", args=[subaccount.pk])).status_code == 404
    with tenant_context(world.a.agency):
        assert not Membership.objects.filter(user=world.a.admin).exists()
    # when it tries to make itself one, it is refused and still is none
    response = client.post(
        reverse("subaccounts:member-add", args=[subaccount.pk]),
        {"email": world.a.admin.email, "role": Membership.Role.ACCOUNT_ADMIN},
    )
    assert response.status_code == 400
    assert client.get(reverse("subaccounts:dashboard", args=[subaccount.pk])).status_code == 404
    with tenant_context(world.a.agency):
        assert not Membership.objects.filter(user=world.a.admin).exists()


def test_agency_user_may_list_but_not_manage(world):
    client = client_for(world.a, world.a.agency_user)
    assert client.get(reverse("subaccounts:list")).status_code == 200
    assert client.get(reverse("subaccounts:create")).status_code == 404
    assert client.get(reverse("subaccounts:manage", args=[world.a.subaccounts[0].pk])).status_code == 404


def test_session_from_agency_a_is_not_valid_on_agency_b(world):
    # given a signed-in session on A's domain
    client_a = client_for(world.a, world.a.admin)
    assert client_a.get(reverse("subaccounts:list")).status_code == 200
    session_cookie = client_a.cookies["sessionid"].value
    # when the same cookie is presented on B's domain
    client_b = client_for(world.b)
    client_b.cookies["sessionid"] = session_cookie
    response = client_b.get(reverse("subaccounts:list"))
    # then B treats it as signed out
    assert response.status_code == 302
    assert reverse("people:login") in response["Location"]


def test_unknown_domain_is_404(world):
    from django.test import Client

    assert Client(HTTP_HOST="nobody.localhost").get("/login/").status_code == 404


def test_user_tables_are_per_agency(world):
    with tenant_context(world.a.agency):
        from people.models import User

        emails_a = set(User.objects.values_list("email", flat=True))
    assert "admin@alpha.test" in emails_a
    assert not any(email.endswith("bravo.test") or "bravo" in email for email in emails_a)
