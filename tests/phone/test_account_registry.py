"""A Twilio account is billed by one sub-account only, and a main account's children are never billed."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from devservices.fake_twilio import clear_request_log, create_account, request_log
from phone.models import SubAccountProvider, UsageLine
from phone.services import provider_set_twilio, usage_pull
from phoneregistry.models import TwilioAccountClaim
from subaccounts.models import AuditEntry
from tests.phone.helpers import D, agency_twilio_account, put_usage, sid, today, token, usage, use_lc_phone, use_twilio

pytestmark = pytest.mark.django_db


def test_a_main_account_with_subaccounts_is_billed_only_its_own_usage(world, twilio):
    with tenant_context(world.a.agency):
        # given an agency's main Twilio account with two subaccounts of its own, all with usage today
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="main")
        main = provider.twilio_account_sid
        for child in ("child-1", "child-2"):
            create_account(twilio.url, sid(child), token(child), parent_sid=main)
            put_usage(twilio.url, sid(child), [usage("sms-outbound-longcode", today(), 1000, "7.90")])
        put_usage(twilio.url, main, [usage("sms-outbound-longcode", today(), 10, "0.079")])
        clear_request_log(twilio.url)
        # when
        usage_pull(provider_id=provider.pk)
        # then only the main account's own 10 messages are stored
        [line] = UsageLine.objects.filter(subaccount=provider.subaccount)
        assert (line.units, line.cost) == (10, D("0.079"))
        [query] = [r["query"] for r in request_log(twilio.url, main) if r["path"].endswith("Daily.json")]
        assert query["IncludeSubaccounts"] == "false"
    with tenant_context(world.b.agency):
        assert not UsageLine.objects.exists()


def test_the_fake_gives_a_main_account_its_childrens_usage_by_default(world, twilio):
    import requests

    main_sid, main_token = agency_twilio_account(twilio.url, "main")
    create_account(twilio.url, sid("child"), token("child"), parent_sid=main_sid)
    put_usage(twilio.url, sid("child"), [usage("calls-outbound", today(), 7, "0.1")])
    put_usage(twilio.url, main_sid, [usage("calls-outbound", today(), 3, "0.05")])
    url = f"{twilio.url}/2010-04-01/Accounts/{main_sid}/Usage/Records/Daily.json"

    def units(**params) -> str:
        page = requests.get(url, params={"Category": "calls-outbound", **params}, auth=(main_sid, main_token),
                            timeout=10).json()
        return page["usage_records"][-1]["usage"]

    assert units() == "10"
    assert units(IncludeSubaccounts="false") == "3"


def test_one_twilio_account_is_refused_for_a_second_sub_account_of_the_same_agency(world, twilio):
    with tenant_context(world.a.agency):
        # given sub-account 1 bills the agency's Twilio account
        first, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="shared")
        # when sub-account 2 is given the same account
        with pytest.raises(ValidationError) as refused:
            use_twilio(twilio.url, subaccount=world.a.subaccounts[1], admin=world.a.admin, name="shared")
        # then it is refused and nothing of sub-account 2 changed
        assert "already used by another sub-account" in str(refused.value)
        assert not SubAccountProvider.objects.filter(subaccount=world.a.subaccounts[1]).exists()
        assert not AuditEntry.objects.filter(subaccount=world.a.subaccounts[1]).exists()
        # and the first keeps it (saving it again for the same sub-account is fine)
        use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="shared")
    claim = TwilioAccountClaim.objects.get(account_sid=first.twilio_account_sid)
    assert (claim.agency_id, claim.subaccount_id) == (world.a.agency.pk, world.a.subaccounts[0].pk)


def test_one_twilio_account_is_refused_for_a_sub_account_of_another_agency(world, twilio):
    with tenant_context(world.a.agency):
        use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="shared")
    with tenant_context(world.b.agency):
        account_sid, auth_token = sid("shared"), token("shared")
        with pytest.raises(ValidationError):
            provider_set_twilio(subaccount=world.b.subaccounts[0], account_sid=account_sid, auth_token=auth_token,
                                by=world.b.admin)
        assert not SubAccountProvider.objects.exists()
    assert TwilioAccountClaim.objects.filter(account_sid=sid("shared")).count() == 1


def test_an_account_left_behind_stays_claimed_while_it_is_still_pulled(world, twilio):
    import time_machine
    from django.utils import timezone

    with tenant_context(world.a.agency):
        provider, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="old")
        use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        # the old account is still pulled for 35 days: nobody else may bill it meanwhile
        with pytest.raises(ValidationError):
            use_twilio(twilio.url, subaccount=world.a.subaccounts[1], admin=world.a.admin, name="old")
        with time_machine.travel(timezone.now() + timezone.timedelta(days=36)):
            taken, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[1], admin=world.a.admin, name="old")
        claim = TwilioAccountClaim.objects.get(account_sid=taken.twilio_account_sid)
        assert (claim.subaccount_id, claim.released_after) == (world.a.subaccounts[1].pk, None)
        assert provider.pk
