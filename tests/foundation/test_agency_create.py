"""Creating agencies: from the service, the management command and the platform admin; bad input changes nothing."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_exists, tenant_context

from agencies.models import Agency, Domain
from agencies.plans import Plan
from agencies.services import agency_create
from people.models import User

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, int]:
    return Agency.objects.count(), Domain.objects.count()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"slug": "alpha"}, "slug", "already taken"),
        ({"custom_domain": "alpha.localhost"}, "custom_domain", "already in use"),
        ({"custom_domain": "not a domain"}, "custom_domain", "not a valid domain"),
        ({"custom_domain": "-bad-.example.com"}, "custom_domain", "not a valid domain"),
        ({"slug": "Has Spaces"}, "slug", "lowercase"),
        ({"slug": "admin"}, "slug", "reserved"),
        ({"slug": "information-schema"}, "slug", "reserved"),
        ({"slug": "pg-toast"}, "slug", "reserved"),
        ({"slug": "pg-anything-new"}, "slug", "reserved"),
        ({"plan": "gold"}, "plan", "Unknown plan"),
        ({"billing_period": "weekly"}, "billing_period", "Unknown billing period"),
        ({"admin_email": "not-an-email"}, "admin_email", "not a valid email"),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(world, overrides, field, message):
    # given
    before = counts()
    params = {"name": "New Co", "slug": "newco", "plan": Plan.PRO, "admin_email": "boss@newco.test",
              "admin_password": "Str0ng-enough-pw"} | overrides
    # when
    with pytest.raises(ValidationError) as refused:
        agency_create(**params)
    # then
    assert message in " ".join(refused.value.message_dict[field])
    assert counts() == before
    assert not schema_exists("newco")


def test_a_slug_naming_a_schema_that_already_exists_is_refused(world):
    # given a schema that is no agency's (e.g. made by an extension or by hand)
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA stray_things")
    before = counts()
    # when an agency would take it
    with pytest.raises(ValidationError) as refused:
        agency_create(name="Stray", slug="stray-things", plan=Plan.PRO, admin_email="boss@stray.test",
                      admin_password="Str0ng-enough-pw")
    # then it is refused and nothing is made
    assert "reserved" in " ".join(refused.value.message_dict["slug"])
    assert counts() == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'stray_things'")
        assert cursor.fetchone() == (0,)


def test_agency_create_makes_schema_domain_and_admin(world):
    agency = agency_create(
        name="Gamma", slug="gamma-co", plan=Plan.FREELANCER, admin_email="Boss@Gamma.test",
        admin_password="Str0ng-enough-pw", custom_domain="crm.gamma.test",
    )
    assert agency.schema_name == "gamma_co"
    assert schema_exists("gamma_co")
    assert set(agency.domains.values_list("domain", flat=True)) == {"gamma-co.localhost", "crm.gamma.test"}
    with tenant_context(agency):
        admin = User.objects.get()
        assert admin.email == "boss@gamma.test" and admin.is_agency_admin
        assert admin.check_password("Str0ng-enough-pw")
    response = Client(HTTP_HOST="crm.gamma.test").post(
        "/login/", {"email": "boss@gamma.test", "password": "Str0ng-enough-pw"}
    )
    assert response.status_code == 302


def test_management_command_creates_and_refuses(world, capsys):
    call_command("create_agency", "--name", "Delta", "--slug", "delta", "--plan", "starter",
                 "--admin-email", "boss@delta.test", "--admin-password", "Str0ng-enough-pw")
    assert "Created Delta at delta.localhost" in capsys.readouterr().out
    before = counts()
    with pytest.raises(CommandError, match="slug.*already taken.*plan: Unknown plan"):
        call_command("create_agency", "--name", "Delta 2", "--slug", "delta", "--plan", "gold",
                     "--admin-email", "boss@delta.test")
    assert counts() == before


def test_platform_staff_create_an_agency_from_the_admin(world):
    # given platform staff signed in on the platform domain
    connection.set_schema_to_public()
    User.objects.create_superuser("root@rebill.localhost", "Str0ng-enough-pw")
    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(email="root@rebill.localhost"))
    form = {"name": "Echo", "slug": "echo", "plan": "pro", "billing_period": "annual", "custom_domain": "",
            "admin_email": "boss@echo.test", "admin_full_name": "Boss", "admin_password": "Str0ng-enough-pw"}
    # when a bad slug is sent, nothing is created and the error is shown
    bad = client.post("/admin/agencies/agency/create/", form | {"slug": "alpha"})
    assert bad.status_code == 200 and "already taken" in bad.content.decode()
    assert not Agency.objects.filter(name="Echo").exists()
    # when the form is good
    good = client.post("/admin/agencies/agency/create/", form)
    # then
    assert good.status_code == 302
    echo = Agency.objects.get(slug="echo")
    assert echo.plan == Plan.PRO and echo.billing_period == "annual"
    listing = client.get("/admin/agencies/agency/").content.decode()
    assert "Echo" in listing and ">platform<" not in listing


def test_agency_admin_cannot_reach_the_platform_admin(world):
    client = Client(HTTP_HOST=world.a.domain)
    assert client.get("/admin/").status_code == 404


def test_agency_created_without_password_invites_its_admin(world, django_capture_on_commit_callbacks, settings):
    import re

    from django.core import mail

    settings.REBILL_SITE_PORT = "8123"
    with django_capture_on_commit_callbacks(execute=True):
        agency = agency_create(name="Foxtrot", slug="foxtrot", plan=Plan.PRO, admin_email="boss@foxtrot.test",
                               admin_password=None)
    [email] = mail.outbox
    assert email.to == ["boss@foxtrot.test"] and "Foxtrot" in email.subject
    path = re.search(r"http://foxtrot\.localhost:8123(/invitation/\S+/)", email.body).group(1)
    client = Client(HTTP_HOST="foxtrot.localhost")
    assert client.post(path, {"password": "Foxtrot-boss-pw-1"}).status_code == 302
    with tenant_context(agency):
        assert User.objects.get(email="boss@foxtrot.test").check_password("Foxtrot-boss-pw-1")
