"""Agency admins create sub-accounts and add their people; invitations set a password once."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django_tenants.utils import tenant_context

from people.models import User
from subaccounts.models import AuditEntry, Membership, SubAccount
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
        ({"email": "x@y.test", "role": "account_admin", "full_name": "X\nY"}, "no line breaks"),
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


@pytest.mark.parametrize("staff", ["admin", "agency_user"])
@pytest.mark.parametrize("role", [Membership.Role.ACCOUNT_ADMIN, Membership.Role.ACCOUNT_USER])
def test_agency_staff_can_never_be_added_to_a_client(world, staff, role):
    # given agency A's admin, adding itself (or its colleague) to a client
    client = client_for(world.a, world.a.admin)
    subaccount = world.a.subaccounts[0]
    email = getattr(world.a, staff).email.upper()

    # when
    response = client.post(reverse("subaccounts:member-add", args=[subaccount.pk]), {"email": email, "role": role})

    # then it is refused next to the email, and nothing changed
    assert response.status_code == 400
    assert "agency staff cannot be members of a client" in response.content.decode()
    with tenant_context(world.a.agency):
        assert not Membership.objects.filter(user__email=email.lower()).exists()
        assert not AuditEntry.objects.filter(action=AuditEntry.Action.MEMBER_ADDED).exists()
    assert mail.outbox == []


def test_the_agency_never_chooses_a_clients_password(world):
    # given the agency admin posts a password along with a new account admin (the form has no such field)
    client = client_for(world.a, world.a.admin)
    page = client.get(reverse("subaccounts:manage", args=[world.a.subaccounts[0].pk])).content.decode()
    assert 'name="password"' not in page

    response = client.post(reverse("subaccounts:member-add", args=[world.a.subaccounts[0].pk]),
                           {"email": "puppet@client.test", "role": Membership.Role.ACCOUNT_ADMIN,
                            "password": "Agency-chosen-pw-1"})

    # then the person is invited and has no password until they choose one
    assert response.status_code == 302
    with tenant_context(world.a.agency):
        puppet = User.objects.get(email="puppet@client.test")
        assert not puppet.has_usable_password() and puppet.role == User.Role.CLIENT
    [invitation] = mail.outbox
    assert invitation.to == ["puppet@client.test"]
    sign_in = client_for(world.a).post(reverse("people:login"), {"email": "puppet@client.test",
                                                                 "password": "Agency-chosen-pw-1"})
    assert sign_in.status_code == 200


def test_membership_changes_are_audited_in_the_subaccount_log(world):
    client = client_for(world.a, world.a.admin)
    subaccount = world.a.subaccounts[0]

    client.post(reverse("subaccounts:member-add", args=[subaccount.pk]),
                {"email": "Audit@client.test", "role": Membership.Role.ACCOUNT_USER})
    with tenant_context(world.a.agency):
        membership = Membership.objects.get(user__email="audit@client.test")
    client.post(reverse("subaccounts:member-remove", args=[subaccount.pk, membership.pk]))

    with tenant_context(world.a.agency):
        removed, added = AuditEntry.objects.filter(subaccount=subaccount)[:2]
        assert (added.action, added.actor, added.after) == (
            AuditEntry.Action.MEMBER_ADDED, world.a.admin.email,
            {"email": "audit@client.test", "role": Membership.Role.ACCOUNT_USER})
        assert (removed.action, removed.actor, removed.before) == (
            AuditEntry.Action.MEMBER_REMOVED, world.a.admin.email,
            {"email": "audit@client.test", "role": Membership.Role.ACCOUNT_USER})
        assert not AuditEntry.objects.exclude(subaccount=subaccount).exists()
    with tenant_context(world.b.agency):
        assert not AuditEntry.objects.exists()


def test_a_failed_audit_write_leaves_no_membership(world, monkeypatch):
    # the audit row is written in the change's own transaction: no audit, no change
    from django.core.exceptions import ValidationError

    import subaccounts.services
    from subaccounts.services import membership_add

    def broken_audit(**kwargs):
        raise ValidationError("audit unavailable")

    monkeypatch.setattr(subaccounts.services, "audit_record", broken_audit)
    with tenant_context(world.a.agency), pytest.raises(ValidationError):
        membership_add(subaccount=world.a.subaccounts[0], email="ghost@client.test", full_name="",
                       role=Membership.Role.ACCOUNT_USER, by=world.a.admin)
    with tenant_context(world.a.agency):
        assert not User.objects.filter(email="ghost@client.test").exists()
