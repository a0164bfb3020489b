"""Agency admins create sub-accounts and add their people; invitations set a password once."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django_tenants.utils import tenant_context

from people.models import User
from subaccounts.models import Membership, SubAccount
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_create_and_edit_subaccount(world):
    client = client_for(world.a, world.a.admin)
    response = client.post(reverse("subaccounts:create"), {"name": "Zen Spa", "contact_email": "HI@zen.test"})
    assert response.status_code == 302
    with tenant_context(world.a.agency):
        spa = SubAccount.objects.get(name="Zen Spa")
        assert spa.contact_email == "hi@zen.test"
    with tenant_context(world.b.agency):
        assert not SubAccount.objects.filter(name="Zen Spa").exists()
    client.post(reverse("subaccounts:edit", args=[spa.pk]), {"name": "Zen Day Spa"})
    with tenant_context(world.a.agency):
        assert SubAccount.objects.get(pk=spa.pk).name == "Zen Day Spa"


def test_duplicate_subaccount_name_is_refused(world):
    client = client_for(world.a, world.a.admin)
    response = client.post(reverse("subaccounts:create"), {"name": world.a.subaccounts[0].name.upper()})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    with tenant_context(world.a.agency):
        assert SubAccount.objects.count() == 2


def test_add_member_with_duplicate_email_in_subaccount_is_refused(world):
    client = client_for(world.a, world.a.admin)
    subaccount = world.a.subaccounts[0]
    response = client.post(
        reverse("subaccounts:member-add", args=[subaccount.pk]),
        {"email": world.a.account_admins[0].email, "role": Membership.Role.ACCOUNT_USER},
    )
    assert response.status_code == 400
    assert "already in this sub-account" in response.content.decode()
    with tenant_context(world.a.agency):
        assert Membership.objects.filter(subaccount=subaccount).count() == 2


def test_bad_member_input_is_refused(world):
    client = client_for(world.a, world.a.admin)
    subaccount = world.a.subaccounts[0]
    for data, message in [
        ({"email": "not-an-email", "role": "account_admin"}, "Enter a valid email address."),
        ({"email": "x@y.test", "role": "owner"}, "Select a valid choice."),
        ({"email": "x@y.test", "role": "account_admin", "password": "123"}, "too short"),
    ]:
        response = client.post(reverse("subaccounts:member-add", args=[subaccount.pk]), data)
        assert response.status_code == 400 and message in response.content.decode()
    with tenant_context(world.a.agency):
        assert not User.objects.filter(email="x@y.test").exists()


def test_invited_account_admin_sets_password_once(world):
    # given the agency admin invites a new account admin without a password
    client = client_for(world.a, world.a.admin)
    subaccount = world.a.subaccounts[1]
    client.post(
        reverse("subaccounts:member-add", args=[subaccount.pk]),
        {"email": "newowner@client.test", "full_name": "New Owner", "role": Membership.Role.ACCOUNT_ADMIN},
    )
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["newowner@client.test"]
    link = re.search(r"http://alpha\.localhost(/invitation/\S+/)", mail.outbox[0].body).group(1)
    # when they open it and choose a password
    invitee = client_for(world.a)
    assert invitee.get(link).status_code == 200
    done = invitee.post(link, {"password": "My-new-passw0rd"})
    # then they are signed in to their sub-account only
    assert done.status_code == 302
    assert invitee.get(reverse("subaccounts:dashboard", args=[subaccount.pk])).status_code == 200
    assert invitee.get(reverse("subaccounts:dashboard", args=[world.a.subaccounts[0].pk])).status_code == 404
    # and the link cannot be used again, nor tampered with
    again = client_for(world.a).post(link, {"password": "Other-passw0rd!"})
    assert again.status_code == 400 and "already been used" in again.content.decode()
    tampered = client_for(world.a).get(link[:-3] + "xx/")
    assert tampered.status_code == 400
    with tenant_context(world.a.agency):
        assert User.objects.get(email="newowner@client.test").check_password("My-new-passw0rd")


def test_invitation_link_does_not_work_on_another_agency(world):
    client = client_for(world.a, world.a.admin)
    client.post(
        reverse("subaccounts:member-add", args=[world.a.subaccounts[0].pk]),
        {"email": "cross@client.test", "role": Membership.Role.ACCOUNT_USER},
    )
    link = re.search(r"http://alpha\.localhost(/invitation/\S+/)", mail.outbox[0].body).group(1)
    assert client_for(world.b).get(link).status_code == 400


def test_remove_member(world):
    client = client_for(world.a, world.a.admin)
    with tenant_context(world.a.agency):
        membership = Membership.objects.get(user=world.a.account_users[0])
        other_membership = Membership.objects.get(user=world.a.account_users[1])
    # a membership id of another sub-account via this sub-account's URL is 404
    wrong = client.post(reverse("subaccounts:member-remove", args=[world.a.subaccounts[0].pk, other_membership.pk]))
    assert wrong.status_code == 404
    client.post(reverse("subaccounts:member-remove", args=[world.a.subaccounts[0].pk, membership.pk]))
    with tenant_context(world.a.agency):
        assert not Membership.objects.filter(pk=membership.pk).exists()
        assert Membership.objects.filter(pk=other_membership.pk).exists()


def test_no_state_change_on_get(world):
    client = client_for(world.a, world.a.admin)
    response = client.get(reverse("subaccounts:member-add", args=[world.a.subaccounts[0].pk]))
    assert response.status_code == 405


def test_duplicate_user_email_is_refused_case_insensitively(world):
    from django.core.exceptions import ValidationError

    from people.services import user_create

    with tenant_context(world.a.agency):
        before = User.objects.count()
        with pytest.raises(ValidationError, match="already exists"):
            user_create(email="ADMIN@alpha.test", password="Some-passw0rd!", role=User.Role.AGENCY_USER)
        assert User.objects.count() == before
    with tenant_context(world.b.agency):
        # the same email is a different person in another agency
        user_create(email="admin@alpha.test", password="Some-passw0rd!", role=User.Role.AGENCY_USER)
