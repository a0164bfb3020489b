"""Names are one line of text; email headers are never built from unfiltered text; a failed email never
leaves a half-done change (the change is committed, the failure is said, and the email can be sent again)."""

import re

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django_tenants.utils import schema_exists, tenant_context

from agencies.models import Agency
from people.models import User
from rebill.text import header_safe
from subaccounts.models import Membership, SubAccount
from tests.conftest import client_for
from tests.factories import SubAccountFactory

pytestmark = pytest.mark.django_db

EVIL = "Evil\nBcc: x@y.test"


@pytest.mark.parametrize("name", [EVIL, "Tab\there", "Null\x00byte", "Line\u2028separator", "CR\rLF"])
def test_a_subaccount_name_with_control_characters_is_refused_next_to_the_field(world, name):
    client = client_for(world.a, world.a.admin)

    response = client.post(reverse("subaccounts:create"), {"name": name})

    assert response.status_code == 200
    assert "no line breaks, tabs or other control characters" in response.content.decode()
    with tenant_context(world.a.agency):
        assert SubAccount.objects.count() == 2
    # renaming an existing one is refused the same way
    subaccount = world.a.subaccounts[0]
    response = client.post(reverse("subaccounts:edit", args=[subaccount.pk]), {"name": name})
    assert "no line breaks" in response.content.decode()
    with tenant_context(world.a.agency):
        assert SubAccount.objects.get(pk=subaccount.pk).name == subaccount.name


def test_the_service_refuses_such_a_name_too(world):
    from django.core.exceptions import ValidationError

    from subaccounts.services import subaccount_create

    with tenant_context(world.a.agency), pytest.raises(ValidationError) as refused:
        subaccount_create(name=EVIL, by=world.a.admin)
    assert "control characters" in " ".join(refused.value.message_dict["name"])


def test_a_persons_full_name_with_a_line_break_is_refused(world):
    client = client_for(world.a, world.a.admin)

    response = client.post(reverse("subaccounts:member-add", args=[world.a.subaccounts[0].pk]),
                           {"email": "new@client.test", "full_name": "Ann\r\nBcc: x@y.test", "role": "account_user"})

    assert response.status_code == 400 and "no line breaks" in response.content.decode()
    with tenant_context(world.a.agency):
        assert not User.objects.filter(email="new@client.test").exists()
    assert mail.outbox == []


def test_names_saved_before_the_rule_never_reach_a_header(world, django_capture_on_commit_callbacks):
    # given a sub-account whose name has a line break (saved before names were checked)
    with tenant_context(world.a.agency):
        legacy = SubAccountFactory(name=EVIL)
    client = client_for(world.a, world.a.admin)

    # when a person is invited to it
    response = client.post(reverse("subaccounts:member-add", args=[legacy.pk]),
                           {"email": "owner@legacy.test", "role": Membership.Role.ACCOUNT_ADMIN})

    # then the invitation goes out with a one-line subject and no extra recipient
    assert response.status_code == 302
    [invitation] = mail.outbox
    assert invitation.subject == "You're invited to Evil Bcc: x@y.test"
    assert invitation.to == ["owner@legacy.test"] and invitation.bcc == []
    message = invitation.message()
    assert message["Bcc"] is None and "\n" not in message["Subject"]


def test_header_safe():
    assert header_safe("a\nb\r\nc\td\x00e\u2028f") == "a b c d e f"
    assert header_safe("  spaced   out  ") == "spaced out"
    long = header_safe("x" * 500)
    assert len(long) == 120 and long.endswith("…")


def test_an_invitation_that_cannot_be_sent_is_said_and_can_be_sent_again(world, settings):
    # given the mail server refuses everything
    settings.EMAIL_BACKEND = "tests.failing_email.EmailBackend"
    client = client_for(world.a, world.a.admin)
    subaccount = world.a.subaccounts[0]

    # when the agency admin adds a person
    response = client.post(reverse("subaccounts:member-add", args=[subaccount.pk]),
                           {"email": "late@client.test", "role": Membership.Role.ACCOUNT_USER}, follow=True)

    # then the person is added (a complete change on its own), and the page says the invitation was not sent
    assert response.status_code == 200
    html = response.content.decode()
    assert "late@client.test was added, but the invitation was not sent" in html
    assert "Send invitation again" in html
    with tenant_context(world.a.agency):
        membership = Membership.objects.get(subaccount=subaccount, user__email="late@client.test")
    assert mail.outbox == []

    # and once mail works again, it is sent from Manage Client
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    again = client.post(reverse("subaccounts:member-invite", args=[subaccount.pk, membership.pk]), follow=True)
    assert "Invitation sent to late@client.test." in again.content.decode()
    [invitation] = mail.outbox
    assert re.search(r"/invitation/\S+/", invitation.body)
    # and it is for that agency's members only: another sub-account's id in the URL is 404
    wrong = client.post(reverse("subaccounts:member-invite", args=[world.a.subaccounts[1].pk, membership.pk]))
    assert wrong.status_code == 404
    assert client_for(world.b, world.b.admin).post(
        reverse("subaccounts:member-invite", args=[subaccount.pk, membership.pk])).status_code == 404
    assert len(mail.outbox) == 1


# The platform admin's "create agency" ---------------------------------------------------------------------------
def _platform_admin() -> Client:
    connection.set_schema_to_public()
    User.objects.create_superuser("ops-names@rebill.localhost", "Platform-pass-123")
    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(email="ops-names@rebill.localhost"))
    return client


def _create_agency_form(**overrides):
    return {"name": "Hotel Co", "slug": "hotel-co", "plan": "pro", "billing_period": "monthly",
            "admin_email": "boss@hotel.test", "admin_full_name": "", "admin_password": "", **overrides}


@pytest.mark.parametrize("field", ["name", "admin_full_name"])
def test_the_platform_refuses_an_agency_name_with_a_line_break(world, field):
    client = _platform_admin()
    before = Agency.objects.count()

    response = client.post("/admin/agencies/agency/create/", _create_agency_form(**{field: EVIL}))

    assert response.status_code == 200
    assert "no line breaks, tabs or other control characters" in response.content.decode()
    assert Agency.objects.count() == before and not schema_exists("hotel_co")
    assert mail.outbox == []


def test_the_platform_admin_cannot_rename_an_agency_to_a_header_injection(world):
    client = _platform_admin()
    agency = world.a.agency

    response = client.post(f"/admin/agencies/agency/{agency.pk}/change/",
                           {"name": EVIL, "plan": agency.plan, "billing_period": agency.billing_period})

    assert response.status_code == 200 and "no line breaks" in response.content.decode()
    assert Agency.objects.get(pk=agency.pk).name == agency.name


def test_an_agency_whose_admin_invitation_fails_is_created_and_the_page_says_so(world, settings):
    settings.EMAIL_BACKEND = "tests.failing_email.EmailBackend"
    client = _platform_admin()

    response = client.post("/admin/agencies/agency/create/", _create_agency_form(), follow=True)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Agency Hotel Co created." in html
    assert "The invitation to boss@hotel.test was not sent" in html
    agency = Agency.objects.get(slug="hotel-co")
    # and the admin action sends it again once mail works
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.post("/admin/agencies/agency/", {"action": "send_admin_invitations", "_selected_action": [agency.pk]})
    [invitation] = mail.outbox
    assert invitation.to == ["boss@hotel.test"] and "hotel-co.localhost" in invitation.body
    with tenant_context(agency):
        assert not User.objects.get(email="boss@hotel.test").has_usable_password()
