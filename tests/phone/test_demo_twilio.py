"""The demo's Twilio credentials that people trying `make run` can type in really work (and others don't)."""

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from devservices.demo.phone import demo_phone_providers, demo_spare_twilio_account
from phone.models import SubAccountProvider
from phone.services import provider_set_twilio
from subaccounts.models import SubAccount
from tests.factories import SubAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_twilio(settings):
    """A fake Twilio in demo mode, as `make run` starts it, with the demo's master account."""
    from devservices.demo.phone import DEMO_MASTER_AUTH_TOKEN, DEMO_MASTER_SID
    from devservices.fake_twilio import create_account, start_fake_twilio

    process = start_fake_twilio(demo=True)
    try:
        create_account(process.url, DEMO_MASTER_SID, DEMO_MASTER_AUTH_TOKEN, demo=True)
        settings.TWILIO_API_BASE = process.url
        settings.TWILIO_MASTER_ACCOUNT_SID, settings.TWILIO_MASTER_AUTH_TOKEN = DEMO_MASTER_SID, DEMO_MASTER_AUTH_TOKEN
        settings.TWILIO_RETRY_MAX_ATTEMPTS, settings.TWILIO_RETRY_BACKOFF_SECONDS = 2, 0.01
        yield process.url
    finally:
        process.stop()


def test_the_printed_spare_twilio_account_is_accepted_for_a_new_sub_account(world, demo_twilio):
    # given the demo's phone seed ran for agency A
    with tenant_context(world.a.agency):
        demo_phone_providers(slug="alpha", subaccounts=list(world.a.subaccounts), by=world.a.admin)
        new_client: SubAccount = SubAccountFactory(name="Tried in the demo")

        # when someone enters the spare credentials on a new sub-account
        sid, token = demo_spare_twilio_account("alpha")
        provider = provider_set_twilio(subaccount=new_client, account_sid=sid, auth_token=token, by=world.a.admin)

        # then the fake Twilio accepted them
        assert provider.twilio_account_sid == sid
        # and made-up credentials are refused, changing nothing
        other: SubAccount = SubAccountFactory(name="Made up")
        with pytest.raises(ValidationError):
            provider_set_twilio(subaccount=other, account_sid="AC" + "0" * 32, auth_token="x" * 32, by=world.a.admin)
        assert not SubAccountProvider.objects.filter(subaccount=other).exists()
    with tenant_context(world.b.agency):
        assert not SubAccountProvider.objects.exists()


def test_the_readme_says_where_development_emails_and_demo_twilio_credentials_are():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert ".run/logs/web.log" in readme and "invitation" in readme and "payment link" in readme
    assert "Account SID" in readme and "Use the agency's own Twilio account" in readme
    assert "4242 4242 4242 4242" in readme and "Authorize" in readme
