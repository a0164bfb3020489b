"""phone/services/usage.py where the rest of the suite does not look: the daily re-read of retired accounts running
out of time."""

import time
from datetime import timedelta

import pytest
from django_tenants.utils import tenant_context

from devservices.fake_twilio import inject_fault, request_log
from phone.models import RetiredAccount, UsageLine
from phone.services import PullOutcome, PullResult, usage_pull_retired_accounts
from tests.phone.helpers import put_usage, today, usage, use_lc_phone, use_twilio

pytestmark = pytest.mark.django_db


def test_a_reread_of_retired_accounts_that_runs_out_of_time_stores_what_it_read_and_defers_the_rest(world, twilio):
    yesterday = today() - timedelta(days=1)
    with tenant_context(world.a.agency):
        # given two sub-accounts that each left an LC Phone account with usage on it for their agency's Twilio
        retired_sids = []
        for n, subaccount in enumerate(world.a.subaccounts[:2]):
            lc_sid = use_lc_phone(subaccount=subaccount, admin=world.a.admin).lc_phone_account_sid
            put_usage(twilio.url, lc_sid, [usage("calls-outbound", yesterday, 10 + n)])
            use_twilio(twilio.url, subaccount=subaccount, admin=world.a.admin, name=f"own {n}")
            retired_sids.append(lc_sid)
        slow, later = (RetiredAccount.objects.get(account_sid=sid) for sid in retired_sids)
        # and Twilio taking longer to answer the first re-read than the batch has left
        inject_fault(twilio.url, slow.account_sid, "sleep", seconds=1.0)

        results = usage_pull_retired_accounts(retired_ids=[slow.pk, later.pk], read_until=time.monotonic() + 0.5)

        # then the re-read that was started is stored, and the other is deferred without asking Twilio
        assert results == {slow.pk: PullResult(PullOutcome.STORED, records=1, changed=1),
                           later.pk: PullResult(PullOutcome.DEFERRED)}
        assert UsageLine.objects.get(account_sid=slow.account_sid, day=yesterday).units == 10
        assert request_log(twilio.url, later.account_sid) == []
        assert not UsageLine.objects.filter(account_sid=later.account_sid).exists()
