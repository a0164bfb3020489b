"""Auth tokens (the agency's and the platform's master token) never appear in a page, a log line, an error
message or the audit trail, whatever happens to them."""

import logging

import pytest
from django.urls import reverse
from django_tenants.utils import tenant_context

from devservices.fake_twilio import create_account, inject_fault
from phone.models import SubAccountProvider
from phone.services import provider_set_twilio, usage_pull
from phone.usage_client import UsageFetchError
from subaccounts.models import AuditEntry
from tests.conftest import client_for
from tests.phone.helpers import agency_twilio_account, put_usage, today, usage

pytestmark = pytest.mark.django_db


def test_tokens_never_leak(world, twilio, caplog):
    caplog.set_level(logging.DEBUG)
    account_sid, auth_token = agency_twilio_account(twilio.url, "alpha-own")
    subaccounts = world.a.subaccounts
    client = client_for(world.a, world.a.admin)
    twilio_url = reverse("phone:provider-twilio", urlconf="rebill.urls_tenant", args=[subaccounts[0].pk])
    manage_url = reverse("subaccounts:manage", urlconf="rebill.urls_tenant", args=[subaccounts[0].pk])
    pages: list[str] = []
    errors: list[str] = []

    # a wrong token, then the right one, through the page
    wrong = auth_token[:-4] + "zzzz"
    pages.append(client.post(twilio_url, {"account_sid": account_sid, "auth_token": wrong}).content.decode())
    pages.append(client.post(twilio_url, {"account_sid": account_sid, "auth_token": auth_token},
                             follow=True).content.decode())
    # LC Phone on the other sub-account (the master token at work)
    client.post(reverse("phone:provider-lc-phone", urlconf="rebill.urls_tenant", args=[subaccounts[1].pk]))
    with tenant_context(world.a.agency):
        twilio_provider = SubAccountProvider.objects.get(subaccount_id=subaccounts[0].pk)
        lc_provider = SubAccountProvider.objects.get(subaccount_id=subaccounts[1].pk)
        put_usage(twilio.url, account_sid, [usage("calls-outbound", today(), 3, "0.04")])
        usage_pull(provider_id=twilio_provider.pk)
        usage_pull(provider_id=lc_provider.pk)
        # Twilio down for longer than the retries
        inject_fault(twilio.url, lc_provider.lc_phone_account_sid, "status", status=503, count=10)
        with pytest.raises(UsageFetchError) as raised:
            usage_pull(provider_id=lc_provider.pk)
        errors.append(str(raised.value))
        # the agency rotates its token: the pull is rejected, the page says so
        create_account(twilio.url, account_sid, "n" * 32)
        usage_pull(provider_id=twilio_provider.pk)
        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError) as invalid:
            provider_set_twilio(subaccount=subaccounts[0], account_sid=account_sid, auth_token=auth_token,
                                by=world.a.admin)
        errors.append(str(invalid.value))
        stored = [str(row) for row in SubAccountProvider.objects.values_list(
            "last_error", "twilio_auth_token_last4", "twilio_account_sid")]
        audit = [str(row) for row in AuditEntry.objects.values_list("before", "after")]
    pages.append(client.get(manage_url).content.decode())

    assert "Twilio did not accept" in pages[0] and "Twilio credentials checked and saved" in pages[1]
    assert "Credentials invalid" in pages[2]
    assert caplog.records, "expected the flow to log"
    for secret in (auth_token, wrong, twilio.master_token, "n" * 32):
        assert secret not in caplog.text
        for text in pages + errors + stored + audit:
            assert secret not in text
