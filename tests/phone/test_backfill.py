"""`manage.py backfill_usage`: a date range, one sub-account or all, one agency or all, with a progress bar."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import tenant_context

from devservices.fake_twilio import inject_fault
from phone.models import UsageLine
from tests.phone.helpers import put_usage, today, usage, use_lc_phone, use_twilio

pytestmark = pytest.mark.django_db


def test_backfill_one_sub_account_over_a_range_in_chunks(world, twilio):
    first = today() - timedelta(days=44)
    days = [first + timedelta(days=n) for n in range(45)]
    with tenant_context(world.a.agency):
        target = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        other = use_lc_phone(subaccount=world.a.subaccounts[1], admin=world.a.admin)
    for provider in (target, other):
        put_usage(twilio.url, provider.lc_phone_account_sid, [usage("calls-outbound", day, 2) for day in days])

    err, out = StringIO(), StringIO()
    call_command("backfill_usage", "--start", str(first), "--end", str(today()), "--schema",
                 world.a.agency.schema_name, "--subaccount", str(target.subaccount_id), stdout=out, stderr=err)

    assert "Backfilled 45 usage records for 1 sub-account(s)" in out.getvalue()
    assert "2/2" in err.getvalue()  # the progress bar: 45 days = 2 chunks
    with tenant_context(world.a.agency):
        assert UsageLine.objects.filter(subaccount_id=target.subaccount_id).count() == 45
        assert not UsageLine.objects.filter(subaccount_id=other.subaccount_id).exists()
        # and running it again changes nothing
        call_command("backfill_usage", "--start", str(first), "--end", str(today()), "--no-progress",
                     stdout=StringIO(), stderr=StringIO())
        assert set(UsageLine.objects.values_list("revision", flat=True)) == {1}
        assert UsageLine.objects.count() == 90


def test_backfill_every_agency_and_report_failures(world, twilio):
    with tenant_context(world.a.agency):
        alpha, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="alpha")
    with tenant_context(world.b.agency):
        bravo = use_lc_phone(subaccount=world.b.subaccounts[0], admin=world.b.admin)
    put_usage(twilio.url, alpha.twilio_account_sid, [usage("sms-outbound-longcode", today(), 9)])
    put_usage(twilio.url, bravo.lc_phone_account_sid, [usage("sms-outbound-longcode", today(), 4)])
    inject_fault(twilio.url, bravo.lc_phone_account_sid, "status", status=500, count=10)

    with pytest.raises(CommandError, match="1 pull\\(s\\) failed"):
        call_command("backfill_usage", "--start", str(today()), "--end", str(today()), "--no-progress",
                     stdout=StringIO(), stderr=StringIO())
    with tenant_context(world.a.agency):
        assert list(UsageLine.objects.values_list("units", flat=True)) == [9]


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "2026-02-10", "--end", "2026-02-01"], "after --end"),
    (["--start", "2026-02-01", "--end", "2026-02-10", "--subaccount", "1"], "needs --schema"),
    (["--start", "2026-02-01", "--end", "2026-02-10", "--schema", "nope"], "No agency"),
])
def test_backfill_refuses_bad_arguments(world, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("backfill_usage", *args, stdout=StringIO(), stderr=StringIO())
