"""A spend alert's pause that an agency admin lifts while the pause job is still calling LC Phone: the job resumes
it again (on committed rows and two connections, as the job and the admin's request run)."""

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.plans import PhoneProvider
from creditusage.models import SpendAlert
from creditusage.services import spend_alert_pause_apply
from devservices.fake_twilio import account_status, create_account, inject_fault, request_log
from phone.models import SubAccountProvider
from tests.phone.conftest import MASTER_SID
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
    errors: list[BaseException] = []

    def lift_once_the_call_is_under_way() -> None:
        try:
            deadline = time.monotonic() + 30
            while not any(r["method"] == "POST" for r in request_log(twilio.url, LC_SID)):
                assert time.monotonic() < deadline, "the pause never called LC Phone"
                time.sleep(0.02)
            with tenant_context(world.a.agency):
                SpendAlert.objects.filter(pk=alert.pk).update(resumed_at=timezone.now(), resumed_by="admin@alpha.test")
        except BaseException as error:  # noqa: BLE001 — reported below
            errors.append(error)
        finally:
            connection.close()

    lifter = threading.Thread(target=lift_once_the_call_is_under_way)
    lifter.start()
    # when the pause job suspends it while the agency admin lifts the pause
    with tenant_context(world.a.agency):
        outcome = spend_alert_pause_apply(alert_id=alert.pk)
    lifter.join(timeout=60)

    # then the suspension went through, and the job queued the resume of this client, in agency A
    assert errors == []
    assert outcome == "suspended"
    assert account_status(twilio.url, LC_SID) == "suspended"
    assert _queued(RESUME_TASK) == [(world.a.agency.schema_name, [client.pk])]
