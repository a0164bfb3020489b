"""What a client's people see: one sub-account switcher, their sub-account's page with its usage."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.plans import PhoneProvider, Product
from phone.models import SubAccountProvider, UsageLine
from subaccounts.models import Membership
from tests.conftest import client_for
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _nav(html: str) -> str:
    return html.split('<nav class="mainnav"', 1)[1].split("</nav>", 1)[0]


def test_a_person_in_two_clients_gets_one_switcher_and_one_company_billing_link(world):
    # given an account user of client 1 who is also the account admin of client 2
    person = world.a.account_users[0]
    first, second = world.a.subaccounts
    with tenant_context(world.a.agency):
        MembershipFactory(subaccount=second, user=person, role=Membership.Role.ACCOUNT_ADMIN)
    client = client_for(world.a, person)

    # when they look at client 2, the menu has one switcher naming both, and Company Billing for client 2 only
    nav = _nav(client.get(f"/accounts/{second.pk}/").content.decode())
    assert nav.count('data-testid="subaccount-switcher"') == 1
    assert f'href="/accounts/{first.pk}/"' in nav and f'href="/accounts/{second.pk}/" aria-current="page"' in nav
    assert nav.count("Company Billing") == 1 and f'href="/accounts/{second.pk}/billing/"' in nav
    assert "Company Billing ·" not in nav

    # and on client 1, where they are an account user, no Company Billing at all
    nav = _nav(client.get(f"/accounts/{first.pk}/").content.decode())
    assert "Company Billing" not in nav and f'href="/accounts/{first.pk}/" aria-current="page"' in nav

    # and nothing of agency B, nor of sub-accounts they are not in, is listed
    for other in world.b.subaccounts:
        assert other.name not in nav


def test_an_account_user_sees_their_sub_account_and_its_usage(world):
    # given client 1 on LC Phone with some usage today, and client 2 with other usage
    person = world.a.account_users[0]
    first, second = world.a.subaccounts
    today = timezone.now().date()
    with tenant_context(world.a.agency):
        for subaccount, sid, sms in ((first, "AC" + "1" * 32, "12"), (second, "AC" + "2" * 32, "777")):
            SubAccountProvider.objects.create(subaccount=subaccount, provider=PhoneProvider.LC_PHONE,
                                              lc_phone_account_sid=sid)
            UsageLine.objects.create(
                subaccount=subaccount, provider=PhoneProvider.LC_PHONE, account_sid=sid,
                category="sms-outbound-longcode", day=today - timedelta(days=1), product=Product.SMS,
                usage_unit="segments", count=Decimal(sms), units=Decimal(sms), twilio_price=Decimal("0.0916"),
                cost=Decimal("0.0916"), fetched_at=timezone.now(), created_at=timezone.now(),
                updated_at=timezone.now())

    # when the account user opens their sub-account
    html = client_for(world.a, person).get(f"/accounts/{first.pk}/").content.decode()

    # then they see it, its phone service and usage (units, never the agency's cost), and who handles billing
    assert "You are an account user of" in html and "Phone usage" in html and "LC Phone" in html
    assert "<td>SMS</td><td>12</td>" in html
    assert "0.0916" not in html and "777" not in html
    assert world.a.account_admins[0].email in html and world.a.account_admins[1].email not in html
    assert "Company Billing" not in html


def test_a_client_without_a_phone_provider_is_told_what_will_show(world):
    html = client_for(world.a, world.a.account_admins[0]).get(
        f"/accounts/{world.a.subaccounts[0].pk}/").content.decode()
    assert "Alpha Agency has not set up phone service" in html
    assert f'href="/accounts/{world.a.subaccounts[0].pk}/billing/"' in html
