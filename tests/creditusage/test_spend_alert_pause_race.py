"""A spend alert's pause that an agency admin lifts while the pause job is still calling LC Phone: the job resumes
it again (on committed rows and two connections, as the job and the admin's request run)."""


import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.plans import PhoneProvider
from creditusage.models import SpendAlert
from creditusage.services import spend_alert_pause_apply
from devservices.fake_twilio import account_status, create_account, inject_fault
from phone.models import SubAccountProvider
from tests.phone.conftest import MASTER_SID
from tests.phone.helpers import while_lc_phone_is_called
from tests.queued_jobs import queued as _queued

LC_SID = "AC" + "6" * 32
RESUME_TASK = "creditusage.tasks.spend_alert_resume"


@pytest.fixture
def committed(world, django_db_blocker):
    """Rows committed in agency A (the lift runs on another connection), removed afterwards."""
    with django_db_blocker.unblock():
        try:
            yield
        finally:
            with tenant_context(world.a.agency):
                SpendAlert.objects.all().delete()
                SubAccountProvider.objects.all().delete()
            connection.set_schema_to_public()



def test_a_lift_during_the_pause_call_queues_the_resume(world, committed, jobs_left_queued, twilio):
    client = world.a.subaccounts[0]
    with tenant_context(world.a.agency):
        # given a client on LC Phone paused by today's alert, and LC Phone slow to answer the suspension
        SubAccountProvider.objects.create(subaccount=client, provider=PhoneProvider.LC_PHONE,
                                          lc_phone_account_sid=LC_SID)
        create_account(twilio.url, LC_SID, "t" * 32, parent_sid=MASTER_SID)
        alert = SpendAlert.objects.create(subaccount=client, day=timezone.now().date(), spend=90, trailing_average=1,
                                          multiple=3, floor=25, paused=True)
    # long enough for the lift to land first even on a loaded machine
    inject_fault(twilio.url, LC_SID, "sleep", count=1, seconds=6)

    def lift() -> None:
        with tenant_context(world.a.agency):
            SpendAlert.objects.filter(pk=alert.pk).update(resumed_at=timezone.now(), resumed_by="admin@alpha.test")

    # when the pause job suspends it while the agency admin lifts the pause
    with while_lc_phone_is_called(twilio.url, LC_SID, lift), tenant_context(world.a.agency):
        outcome = spend_alert_pause_apply(alert_id=alert.pk)

    # then the suspension went through, and the job queued the resume of this client, in agency A
    assert outcome == "suspended"
    assert account_status(twilio.url, LC_SID) == "suspended"
    assert _queued(RESUME_TASK) == [(world.a.agency.schema_name, [client.pk])]
